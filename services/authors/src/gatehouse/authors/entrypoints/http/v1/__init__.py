"""Version 1 of the API: the template's shapes (offset and cursor paging with `meta`)."""
