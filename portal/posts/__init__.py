"""Posts: the public list, the post page, writing and the public profiles."""
