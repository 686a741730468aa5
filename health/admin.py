from django.contrib import admin

# The admin index with an "Operations" module on top, linking to the "Database health"
# page (health/admin_urls.py). Set here rather than by the URL root so the link comes and
# goes with the app.
admin.site.index_template = "admin/health/index.html"
