from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """Default for small lists: ``?page=N&page_size=M`` (at most 100 a page)."""

    page_size_query_param = "page_size"
    max_page_size = 100


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination for big, append-mostly lists (generations, the ledger): a page
    costs the same at row 10 and at row 10 million."""

    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-id")
