"""`make bench`: the whole platform, as processes, measured from outside."""
