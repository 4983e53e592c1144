"""Version 2 of the API, beside version 1: the same commands and queries through the same
message bus, another representation.

What changed in v2: a bio comes as ``{"markdown", "html"}`` (the HTML rendered and
sanitised by the service), resources carry ``links``, a book names its author as
``{"id", "href"}``, and lists page by cursor only (``{"data", "next_cursor"}``, no
offset and no total). v1 stays as it is: a client moves when it wants to.
"""
