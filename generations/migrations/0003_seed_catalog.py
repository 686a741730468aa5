"""Seed the AI model catalog: the eight fal.ai models the old API served and charged
(costs and limits from the old system) plus more real fal.ai endpoints. Staff curate it
in the admin afterwards; the reverse removes exactly these rows."""

from django.db import migrations

SEED = 2_147_483_647


def image_schema(*, max_side=2048, max_images=4, guidance=True, steps=True, safety=True):
    properties = {
        "width": {"type": "integer", "minimum": 256, "maximum": max_side, "multipleOf": 8, "default": 1024},
        "height": {"type": "integer", "minimum": 256, "maximum": max_side, "multipleOf": 8, "default": 1024},
        "num_images": {"type": "integer", "minimum": 1, "maximum": max_images, "default": 1},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED},
    }
    if guidance:
        properties["guidance_scale"] = {"type": "number", "minimum": 1, "maximum": 20, "default": 3.5}
    if steps:
        properties["num_inference_steps"] = {"type": "integer", "minimum": 1, "maximum": 50, "default": 28}
    if safety:
        properties["safety_tolerance"] = {"type": "integer", "minimum": 1, "maximum": 6, "default": 2}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def video_schema(*, durations=(1, 10), aspect_ratios=("16:9", "9:16", "1:1")):
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "duration": {"type": "integer", "minimum": durations[0], "maximum": durations[1], "default": 5},
            "aspect_ratio": {"type": "string", "enum": list(aspect_ratios), "default": aspect_ratios[0]},
            "seed": {"type": "integer", "minimum": 0, "maximum": SEED},
        },
    }


FLUX_GUIDE = {
    "strategy": "keyword_weighted",
    "style": "comma-separated weighted keywords, e.g. (cinematic lighting:1.3)",
    "camera": "lens and framing as keywords: 35mm, shallow depth of field, low angle",
    "motion": "",
    "keywords": ["highly detailed", "sharp focus", "professional photography"],
    "negatives": ["blurry", "low quality", "distorted hands", "watermark", "text artifacts"],
    "optimal_length": {"min_words": 100, "max_words": 300},
}
IMAGEN_GUIDE = {
    "strategy": "natural_language",
    "style": "plain descriptive sentences; name the medium and mood",
    "camera": "describe the shot in words: close-up portrait, wide establishing shot",
    "motion": "",
    "keywords": ["photorealistic", "natural light"],
    "negatives": [],
    "optimal_length": {"min_words": 30, "max_words": 150},
}
VEO_GUIDE = {
    "strategy": "descriptive_flow",
    "style": "flowing descriptive prose, one scene told in order",
    "camera": "name camera moves explicitly: slow dolly in, tracking shot, crane up",
    "motion": "describe action over time: what moves, how fast, what changes",
    "keywords": ["cinematic", "smooth motion"],
    "negatives": [],
    "optimal_length": {"min_words": 200, "max_words": 500},
}
ACTION_GUIDE = {
    "strategy": "action_focused",
    "style": "short, concrete sentences led by the action",
    "camera": "one camera move per shot",
    "motion": "subject + verb + direction + speed",
    "keywords": ["dynamic", "fluid motion"],
    "negatives": ["jitter", "morphing", "extra limbs"],
    "optimal_length": {"min_words": 40, "max_words": 120},
}

MODELS = [
    # id, name, kind, cost, max prompt, schema, guide, lora, negative, reference
    (
        "fal-ai/flux-pro/v1.1-ultra",
        "FLUX1.1 [pro] ultra",
        "image",
        50,
        1000,
        image_schema(),
        FLUX_GUIDE,
        False,
        False,
        True,
    ),
    (
        "fal-ai/flux-pro/kontext/max",
        "FLUX.1 Kontext [max]",
        "image",
        60,
        1000,
        image_schema(),
        FLUX_GUIDE,
        False,
        False,
        True,
    ),
    (
        "fal-ai/imagen4/preview/ultra",
        "Imagen 4 Ultra",
        "image",
        45,
        2000,
        image_schema(guidance=False, steps=False, safety=False),
        IMAGEN_GUIDE,
        False,
        True,
        False,
    ),
    ("fal-ai/flux/dev", "FLUX.1 [dev]", "image", 25, 1000, image_schema(), FLUX_GUIDE, True, True, True),
    (
        "fal-ai/flux/schnell",
        "FLUX.1 [schnell]",
        "image",
        10,
        1000,
        image_schema(guidance=False, safety=False),
        FLUX_GUIDE,
        True,
        False,
        False,
    ),
    ("fal-ai/flux-pro/v1.1", "FLUX1.1 [pro]", "image", 40, 1000, image_schema(), FLUX_GUIDE, False, False, False),
    (
        "fal-ai/recraft-v3",
        "Recraft V3",
        "image",
        40,
        1000,
        image_schema(guidance=False, steps=False, safety=False),
        IMAGEN_GUIDE,
        False,
        False,
        False,
    ),
    (
        "fal-ai/ideogram/v2",
        "Ideogram 2.0",
        "image",
        40,
        2000,
        image_schema(guidance=False, steps=False, safety=False),
        IMAGEN_GUIDE,
        False,
        True,
        False,
    ),
    (
        "fal-ai/stable-diffusion-v35-large",
        "Stable Diffusion 3.5 Large",
        "image",
        30,
        2000,
        image_schema(safety=False),
        FLUX_GUIDE,
        True,
        True,
        True,
    ),
    ("fal-ai/veo3", "Veo 3", "video", 500, 2000, video_schema(durations=(5, 8)), VEO_GUIDE, False, True, False),
    (
        "fal-ai/minimax/hailuo-02/pro/text-to-video",
        "Hailuo 02 Pro",
        "video",
        400,
        2000,
        video_schema(durations=(6, 10)),
        ACTION_GUIDE,
        False,
        False,
        False,
    ),
    (
        "fal-ai/kling-video/v2.1/master/text-to-video",
        "Kling 2.1 Master",
        "video",
        350,
        1500,
        video_schema(durations=(5, 10)),
        ACTION_GUIDE,
        False,
        True,
        False,
    ),
    (
        "fal-ai/wan-pro/text-to-video",
        "Wan Pro",
        "video",
        300,
        1500,
        video_schema(durations=(5, 6)),
        ACTION_GUIDE,
        False,
        True,
        False,
    ),
    (
        "fal-ai/luma-dream-machine",
        "Luma Dream Machine",
        "video",
        350,
        1500,
        video_schema(durations=(5, 9)),
        VEO_GUIDE,
        False,
        False,
        True,
    ),
    (
        "fal-ai/ltx-video",
        "LTX Video",
        "video",
        100,
        1500,
        video_schema(durations=(1, 5)),
        ACTION_GUIDE,
        False,
        True,
        True,
    ),
]


def seed(apps, schema_editor):
    AIModel = apps.get_model("generations", "AIModel")
    for order, (model_id, name, kind, cost, max_len, schema, guide, lora, negative, reference) in enumerate(MODELS):
        AIModel.objects.update_or_create(
            id=model_id,
            defaults={
                "provider": "fal",
                "display_name": name,
                "kind": kind,
                "credits_cost": cost,
                "max_prompt_length": max_len,
                "parameter_schema": schema,
                "prompt_guide": guide,
                "supports_lora": lora,
                "supports_negative_prompt": negative,
                "supports_reference_image": reference,
                "is_active": True,
                "sort_order": (order + 1) * 10,
            },
        )


def unseed(apps, schema_editor):
    AIModel = apps.get_model("generations", "AIModel")
    Generation = apps.get_model("generations", "Generation")
    ids = [m[0] for m in MODELS]
    # Models with generations are kept: deleting them would need deleting history.
    AIModel.objects.filter(id__in=ids).exclude(id__in=Generation.objects.values("ai_model_id")).delete()


class Migration(migrations.Migration):
    dependencies = [("generations", "0002_rls_and_functions")]

    operations = [migrations.RunPython(seed, unseed)]
