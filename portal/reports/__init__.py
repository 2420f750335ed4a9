"""Reports: readers tell staff that a post or a comment breaks the rules."""
