from rest_framework.routers import SimpleRouter

from stylestacks.views import StylePresetViewSet, StyleStackViewSet

router = SimpleRouter(trailing_slash=False)
router.register("style-stacks", StyleStackViewSet, basename="style-stack")
router.register("presets", StylePresetViewSet, basename="preset")
urlpatterns = router.urls
