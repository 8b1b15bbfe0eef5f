"""The read side over HTTP: GET endpoints answered from read tables only."""
