"""Comments under posts: writing, editing while pending, deleting."""
