"""Demo data for development: people, projects, style stacks and generations made
through the services, so the dataset obeys every rule the API's data does (ledger
rows for every credit, refunds for failed and cancelled generations, counters kept by
the triggers). ``manage.py seed_demo`` runs it.

Two steps:

* :func:`build_plan` turns the options into a plan — plain data, decided by the random
  seed alone (and the catalog and presets the migrations seeded), so the same options
  always describe the same dataset.
* :class:`Seeder` carries the plan out, one atomic unit per user, project, stack and
  generation: an interruption leaves no half-made user (identity without its credits)
  or generation (charged but never moved to its status), and running again completes
  the rest.

Idempotent: demo people are ``demo01@velro.local`` … (:data:`DEMO_EMAIL`); a user is
found by email, a project and a stack by owner and name, a generation by its idempotency
key (``demo-0001`` …, the same key the API's ``Idempotency-Key`` header sets). What
exists is kept, what is missing is made, and no kind grows past its target count, so a
second run adds nothing. Only demo people and their rows are read or written (plus what
the database's own triggers keep: a preset's usage count, a parent stack's fork count).

Generations left pending or processing are real queue items: a running worker
(``make run`` starts one) renders the pending ones, and its sweep fails and refunds the
processing ones after GENERATION_PROCESSING_TIMEOUT, as it would after a lost worker.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Protocol

from django.contrib.auth.hashers import make_password
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Profile, User
from credits.models import CreditTransaction
from credits.services import credits_grant
from generations.models import AIModel, Generation
from generations.outputs import output_name, store_outputs
from generations.providers.local import LocalProvider
from generations.services import (
    generation_cancel,
    generation_complete,
    generation_create,
    generation_fail,
    generation_set_favorite,
)
from projects.models import Project
from projects.services import project_create
from stylestacks.models import StackContributor, StylePreset, StyleStack
from stylestacks.services import (
    contributor_add,
    stylestack_create,
    stylestack_fork,
    stylestack_from_preset,
    stylestack_update,
)

DEMO_DOMAIN = "velro.local"
DEMO_EMAIL = re.compile(r"^demo\d+@velro\.local$")
DEMO_EMAIL_REGEX = r"^demo[0-9]+@velro\.local$"  # the same, for the database (email__regex)
# The development password of every demo person (shown by `seed_demo --help` and after a run).
DEMO_PASSWORD = "velro-demo-pass"
DEMO_CREDITS_REASON = "Demo credits"
KEY_PREFIX = "demo-"

Status = Generation.Status


def demo_email(index: int) -> str:
    return f"demo{index:02d}@{DEMO_DOMAIN}"


def demo_users():
    return User.objects.filter(email__regex=DEMO_EMAIL_REGEX)


# --- the options and the plan --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    users: int = 42
    recent_users: int = 4
    projects: int = 20
    generations: int = 145
    stacks: int = 12
    seed: int = 7
    password: str = DEMO_PASSWORD
    render: int = 8  # generations rendered for real by the LocalProvider; the rest share their files

    def problems(self) -> list[str]:
        found = [f"--{name.replace('_', '-')} must be 0 or more" for name in self._counts() if getattr(self, name) < 0]
        if self.users < 1 and (self.projects or self.generations or self.stacks):
            found.append("--users must be at least 1 when anything else is asked for")
        if self.recent_users > self.users:
            found.append("--recent-users cannot exceed --users")
        if not self.password:
            found.append("--password cannot be empty")
        return found

    @staticmethod
    def _counts() -> tuple[str, ...]:
        return ("users", "recent_users", "projects", "generations", "stacks", "render")


@dataclasses.dataclass(frozen=True)
class UserPlan:
    email: str
    full_name: str
    age: timedelta  # how long ago they registered
    last_seen: timedelta | None  # how long ago they last signed in
    demo_credits: int  # the "Demo credits" grant at sign-up, enough for all their generations
    activity: int  # weight: how many projects, stacks and generations come their way


@dataclasses.dataclass(frozen=True)
class ProjectPlan:
    owner: str
    name: str
    description: str
    visibility: str
    at: float  # when in the owner's lifetime it was made (0 = registration, 1 = now)


@dataclasses.dataclass(frozen=True)
class StackPlan:
    owner: str
    kind: str  # "manual", "preset" or "fork"
    name: str
    visibility: str
    at: float
    template: int | None = None  # manual: index into STACK_TEMPLATES
    preset: str | None = None  # preset: its slug
    parent: tuple[str, str] | None = None  # fork: (owner, name) of the stack it forks
    contributors: tuple[tuple[str, str], ...] = ()  # (email, role)
    edited: bool = False  # one later edit of the style (so it has a version history)
    models: tuple[str, ...] = ()  # the models it suits (compatible / recommended)


@dataclasses.dataclass(frozen=True)
class GenerationPlan:
    key: str  # idempotency key
    owner: str
    model: str
    prompt: str
    negative_prompt: str
    parameters: dict
    status: str
    at: float
    project: str | None = None  # name of one of the owner's projects
    stack: tuple[str, str] | None = None  # (owner, name)
    preset: str | None = None  # slug
    error: str = ""
    favorite: bool = False
    run_seconds: int = 5  # how long the provider took (completed, failed)


@dataclasses.dataclass(frozen=True)
class Plan:
    options: Options
    users: list[UserPlan]
    projects: list[ProjectPlan]
    stacks: list[StackPlan]
    generations: list[GenerationPlan]


FIRST_NAMES = [
    "Maya", "Liam", "Aisha", "Noah", "Sofia", "Kenji", "Elena", "Mateo", "Priya", "Jonas", "Amara", "Lucas",
    "Hana", "Omar", "Chloe", "Ravi", "Ingrid", "Diego", "Yuki", "Zara", "Felix", "Leila", "Tomás", "Nadia",
    "Oscar", "Mei", "Idris", "Clara", "Sven", "Ana",
]  # fmt: skip
LAST_NAMES = [
    "Lin", "Okafor", "Silva", "Nakamura", "Schmidt", "Haddad", "Rossi", "Kowalski", "Patel", "Moreau",
    "Andersen", "García", "Kim", "Mensah", "Novak", "Costa", "Ibrahim", "Larsen", "Duarte", "Weber",
]  # fmt: skip

PROJECT_NAMES = [
    ("Noir shorts", "Stills and clips for a rainy detective short."),
    ("Product launch", "Hero shots for the spring launch."),
    ("Album cover", "Cover art explorations for the new EP."),
    ("Storyboard: The Lighthouse", "Key frames for the pitch deck."),
    ("Travel diary", "Memories of the Lisbon trip, re-imagined."),
    ("Kids book", "Illustrations for a bedtime story about a fox."),
    ("Brand moodboard", "Look and feel for the café rebrand."),
    ("Music video", "Shots for a synthwave music video."),
    ("Interior concepts", "Living room and kitchen concepts for a client."),
    ("Food blog", "Recipe photos for the autumn series."),
    ("Sci-fi worldbuilding", "Cities, ships and skies of Kepler-9."),
    ("Wedding invites", "Watercolour florals for the invitations."),
    ("Game assets", "Isometric props for a cozy farming game."),
    ("Architecture study", "Brutalist facades in different light."),
    ("Fashion editorial", "Looks for the autumn lookbook."),
    ("Nature documentary", "Establishing shots for a wildlife short."),
    ("Social ads", "Vertical clips for the summer campaign."),
    ("Portfolio", "Best of the year."),
    ("Poster series", "A retro poster for each city."),
    ("Pitch trailer", "Moments for a thirty-second teaser."),
]

IMAGE_PROMPTS = [
    "a detective in a rain-soaked alley under a flickering neon sign",
    "a ceramic coffee cup on a linen tablecloth, morning light",
    "a lighthouse on a cliff during a storm, waves crashing",
    "a red fox reading a book under a mushroom, storybook style",
    "a tram climbing a steep street in Lisbon at golden hour",
    "a minimalist living room with oak floors and a large window",
    "a bowl of ramen with steam rising, dark moody background",
    "a futuristic city skyline at dusk with flying cars",
    "a portrait of an old fisherman with deep wrinkles, soft window light",
    "a bouquet of wild flowers in a glass jar, watercolour",
    "an astronaut floating above a glowing nebula",
    "a cozy cabin in a snowy forest with warm light in the windows",
    "a brutalist concrete library at sunrise",
    "a model in a flowing red dress on a windy beach",
    "an isometric diorama of a tiny bakery",
    "a macro shot of a dew drop on a leaf",
    "a vintage car parked in front of a desert motel",
    "a koi pond seen from above with lily pads",
    "a robot gardener tending tomato plants",
    "a sneaker floating on a pastel background, studio lighting",
]
VIDEO_PROMPTS = [
    "a drone shot gliding over misty mountains at sunrise",
    "waves rolling onto a black sand beach in slow motion",
    "a barista pouring latte art, close-up, steam rising",
    "a city street at night, cars leaving light trails",
    "a fox running through a snowy forest, tracking shot",
    "a paper boat drifting down a rain gutter",
    "a perfume bottle rotating on a mirror, light sweeping across it",
    "a hot air balloon rising over a valley at dawn",
    "a dancer spinning in an empty warehouse, dust in the light",
    "a time-lapse of clouds over a desert canyon",
]
NEGATIVE_PROMPT = "blurry, low quality, watermark, distorted hands"
FAILURES = [
    "fal.ai: 503 Service Unavailable (gave up after 3 retries)",
    "fal.ai: 422 prompt rejected by the provider's content filter",
    "Timed out: still processing after 600 s (worker lost).",
    "fal.ai: the model returned no output",
]


def _doc(style, camera, lighting, keywords, negative, description="", elements=(), motion="") -> dict:
    blocks = {
        "style": {"text": style, "weight": 1.2},
        "camera": {"text": camera},
        "lighting": {"text": lighting},
        "keywords": {"items": list(keywords)},
        "negative": {"text": negative},
    }
    if description:
        blocks["description"] = {"text": description}
    if elements:
        blocks["elements"] = {"items": list(elements)}
    if motion:
        blocks["motion"] = {"text": motion}
    return {"schema_version": 2, "base_json": {"source": "demo"}, "prompt_blocks": blocks}


# name, description, tags, category, document
STACK_TEMPLATES = [
    (
        "Moody neon nights",
        "Wet streets, neon reflections and deep shadows.",
        ["neon", "night", "cinematic"],
        "cinematic",
        _doc(
            "neo-noir, saturated magenta and cyan neon, reflections on wet asphalt",
            "35mm anamorphic, low angle",
            "hard neon rim light, deep shadows, haze",
            ["neon", "rain", "noir", "bokeh"],
            "daylight, flat lighting, cartoon",
            motion="slow dolly forward through drifting rain",
        ),
    ),
    (
        "Soft pastel product",
        "Clean product shots on pastel sets.",
        ["product", "pastel", "studio"],
        "photographic",
        _doc(
            "minimal studio product photography, pastel seamless backdrop",
            "85mm, centered composition, shallow depth of field",
            "large soft box from the left, gentle shadow",
            ["clean", "pastel", "commercial"],
            "clutter, harsh shadows, text",
            elements=["pastel pedestal", "soft shadow"],
        ),
    ),
    (
        "Analog travel diary",
        "Grainy 35mm film memories.",
        ["film", "travel", "vintage"],
        "photographic",
        _doc(
            "35mm film photo, Portra 400 colours, visible grain, slight light leaks",
            "handheld snapshot framing",
            "natural late-afternoon sun",
            ["analog", "grain", "nostalgic"],
            "digital look, oversharpened, HDR",
        ),
    ),
    (
        "Watercolor storybook",
        "Gentle watercolour illustrations for children's books.",
        ["watercolor", "illustration", "kids"],
        "general",
        _doc(
            "loose watercolour illustration, soft washes, ink outlines, paper texture",
            "storybook page composition",
            "soft even light",
            ["watercolor", "whimsical", "storybook"],
            "photorealistic, 3d render, dark",
            description="a warm, friendly scene for young readers",
        ),
    ),
    (
        "Retro sci-fi poster",
        "1970s paperback sci-fi covers.",
        ["retro", "sci-fi", "poster"],
        "genre",
        _doc(
            "1970s science fiction paperback cover, airbrush, bold gradients",
            "heroic wide shot, dramatic perspective",
            "glowing planet light, rim light",
            ["retro futurism", "airbrush", "space"],
            "modern UI, photo, text",
            elements=["ringed planet", "chrome spaceship"],
        ),
    ),
    (
        "Concrete and light",
        "Architectural studies in raw concrete.",
        ["architecture", "brutalism"],
        "photographic",
        _doc(
            "architectural photography, raw concrete, strong geometry",
            "tilt-shift lens, symmetrical one-point perspective",
            "low raking sunlight, long shadows",
            ["brutalism", "geometry", "minimal"],
            "people, clutter, fisheye distortion",
        ),
    ),
    (
        "Golden documentary",
        "Warm, observational documentary look.",
        ["documentary", "warm"],
        "cinematic",
        _doc(
            "observational documentary, warm natural colour grade",
            "handheld, eye level, 50mm",
            "golden hour backlight",
            ["authentic", "candid", "warm"],
            "staged, glossy, oversaturated",
            motion="gentle handheld drift following the subject",
        ),
    ),
    (
        "Clay miniature",
        "Cute claymation-style miniatures.",
        ["clay", "3d", "cute"],
        "general",
        _doc(
            "stylized clay 3d render, handmade plasticine texture, fingerprints visible",
            "tabletop miniature, slight top-down angle",
            "soft studio light, gentle ambient occlusion",
            ["claymation", "miniature", "cute"],
            "photorealistic, horror",
        ),
    ),
]
STACK_EDIT = {"lighting": {"text": "softer, warmer light, lifted shadows"}}

# What the stacks phase makes, by position (cycled): a fork needs an earlier public stack
# of someone else and becomes a manual stack when there is none.
STACK_PATTERN = [
    ("manual", "public"),
    ("preset", "private"),
    ("manual", "private"),
    ("fork", "private"),
    ("preset", "public"),
    ("manual", "unlisted"),
    ("preset", "private"),
    ("fork", "private"),
    ("manual", "public"),
    ("preset", "private"),
    ("manual", "private"),
    ("fork", "private"),
]
# The statuses of generations, by position (cycled): ~70% completed, some failed and
# cancelled (refunded), a few left pending and processing.
STATUS_PATTERN = [
    Status.COMPLETED, Status.COMPLETED, Status.FAILED, Status.COMPLETED, Status.CANCELLED,
    Status.COMPLETED, Status.PENDING, Status.COMPLETED, Status.COMPLETED, Status.PROCESSING,
    Status.COMPLETED, Status.COMPLETED, Status.COMPLETED, Status.FAILED, Status.COMPLETED,
    Status.COMPLETED, Status.CANCELLED, Status.COMPLETED, Status.COMPLETED, Status.COMPLETED,
]  # fmt: skip
IMAGE_SIZES = [(1024, 1024), (1024, 768), (768, 1024), (1024, 576), (512, 512), (832, 1216)]


def _round_up(value: int, step: int = 100) -> int:
    return int(math.ceil(value / step) * step)


def build_plan(options: Options, *, models: list[AIModel], presets: list[StylePreset]) -> Plan:
    """The whole dataset as data, from the options and ``random.Random(options.seed)``."""
    rng = random.Random(options.seed)
    users = _plan_people(options, rng)
    emails = [user.email for user in users]
    weights = [user.activity for user in users]
    if emails and not any(weights):
        weights[0] = 1

    projects = _plan_projects(options, rng, emails, weights)
    stacks = _plan_stacks(options, rng, emails, weights, presets)
    generations = _plan_generations(options, rng, emails, weights, models, presets, projects, stacks)

    # Everyone gets "Demo credits" at sign-up: what their generations cost (all charged
    # before any refund) plus some to spare, so the balances look lived in.
    cost = {model.pk: model.credits_cost for model in models}
    spent = Counter()
    for generation in generations:
        spent[generation.owner] += cost[generation.model]
    users = [
        dataclasses.replace(user, demo_credits=max(100, _round_up(spent[user.email])) + rng.choice([0, 100, 200, 500]))
        for user in users
    ]
    return Plan(options, users, projects, stacks, generations)


def plan_for(options: Options) -> Plan:
    """:func:`build_plan` with the active catalog and presets, in their fixed order."""
    models = list(AIModel.objects.filter(is_active=True).order_by("sort_order", "id"))
    presets = list(StylePreset.objects.filter(is_active=True).order_by("sort_order", "slug"))
    return build_plan(options, models=models, presets=presets)


def _plan_people(options: Options, rng: random.Random) -> list[UserPlan]:
    older = options.users - options.recent_users
    # Registered over the past eight months (oldest first), the last few in the past week.
    ages = sorted((timedelta(days=rng.uniform(8, 240)) for _ in range(older)), reverse=True)
    ages += sorted((timedelta(hours=rng.uniform(2, 6.5 * 24)) for _ in range(options.recent_users)), reverse=True)
    people = []
    for index, age in enumerate(ages, start=1):
        recent = index > older
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        activity = rng.choice([0, 1, 1, 2] if recent else [0, 1, 1, 2, 2, 3, 5, 8])
        last_seen = None if not activity else min(age, timedelta(hours=rng.uniform(1, 24 * 21)))
        people.append(UserPlan(demo_email(index), name, age, last_seen, 0, activity))
    return people


def _plan_projects(options, rng, emails, weights) -> list[ProjectPlan]:
    projects = []
    for index in range(options.projects if emails else 0):
        base, description = PROJECT_NAMES[index % len(PROJECT_NAMES)]
        name = base if index < len(PROJECT_NAMES) else f"{base} {index // len(PROJECT_NAMES) + 1}"
        owner = rng.choices(emails, weights)[0]
        visibility = Project.Visibility.PUBLIC if rng.random() < 0.25 else Project.Visibility.PRIVATE
        projects.append(ProjectPlan(owner, name, description, visibility, rng.uniform(0.02, 0.3)))
    return projects


def _unique_name(name: str, owner: str, taken: set) -> str:
    candidate, n = name, 1
    while (owner, candidate) in taken:
        n += 1
        candidate = f"{name} {n}"
    taken.add((owner, candidate))
    return candidate


def _plan_stacks(options, rng, emails, weights, presets) -> list[StackPlan]:
    stacks: list[StackPlan] = []
    taken: set[tuple[str, str]] = set()
    manual_count = preset_count = 0
    for index in range(options.stacks if emails else 0):
        kind, visibility = STACK_PATTERN[index % len(STACK_PATTERN)]
        owner = rng.choices(emails, weights)[0]
        parents = [s for s in stacks if s.visibility == "public" and s.kind != "fork" and s.owner != owner]
        if kind == "fork" and not parents:
            others = [e for e in emails if e != owner]
            public_parents = [s for s in stacks if s.visibility == "public" and s.kind != "fork"]
            if others and public_parents:  # someone else forks it
                parent = public_parents[-1]
                owner = rng.choice([e for e in emails if e != parent.owner])
                parents = [parent]
            else:
                kind, visibility = "manual", "public"
        if kind == "preset" and not presets:
            kind = "manual"
        at = rng.uniform(0.02, 0.3)
        if kind == "fork":
            parent = rng.choice(parents)
            name = _unique_name(f"{parent.name} (fork)"[:100], owner, taken)
            stacks.append(
                StackPlan(owner, "fork", name, visibility, at, parent=(parent.owner, parent.name), models=parent.models)
            )
        elif kind == "preset":
            preset = presets[(preset_count * 7 + options.seed) % len(presets)]
            preset_count += 1
            name = _unique_name(preset.name, owner, taken)
            models = tuple(preset.recommended_models)
            stacks.append(StackPlan(owner, "preset", name, visibility, at, preset=preset.slug, models=models))
        else:
            template = manual_count % len(STACK_TEMPLATES)
            base = STACK_TEMPLATES[template][0]
            name = base if manual_count < len(STACK_TEMPLATES) else f"{base} {manual_count // len(STACK_TEMPLATES) + 1}"
            manual_count += 1
            name = _unique_name(name, owner, taken)
            stacks.append(StackPlan(owner, "manual", name, visibility, at, template=template, edited=manual_count == 1))

    # A contributor or two on non-fork stacks, from someone other than the owner.
    wanted = max(1, options.stacks // 6) if len(emails) > 1 else 0
    for position, stack in enumerate(stacks):
        if not wanted:
            break
        if stack.kind == "fork":
            continue
        invitee = rng.choice([e for e in emails if e != stack.owner])
        role = StackContributor.Role.EDITOR if wanted % 2 else StackContributor.Role.VIEWER
        stacks[position] = dataclasses.replace(stack, contributors=((invitee, role),))
        wanted -= 1
    return stacks


def _parameters(model: AIModel, rng: random.Random) -> dict:
    properties = (model.parameter_schema or {}).get("properties", {})
    parameters = {}
    if model.kind == AIModel.Kind.VIDEO:
        if "duration" in properties:
            low, high = properties["duration"].get("minimum", 5), properties["duration"].get("maximum", 5)
            parameters["duration"] = rng.randint(low, min(high, low + 3))
        if "aspect_ratio" in properties:
            parameters["aspect_ratio"] = rng.choice(properties["aspect_ratio"].get("enum", ["16:9"]))
    else:
        width, height = rng.choice(IMAGE_SIZES)
        if "width" in properties and "height" in properties:
            parameters.update(width=width, height=height)
        if "num_images" in properties and rng.random() < 0.1:
            parameters["num_images"] = 2
    if "seed" in properties:
        parameters["seed"] = rng.randrange(1, 1_000_000)
    return parameters


def _plan_generations(options, rng, emails, weights, models, presets, projects, stacks) -> list[GenerationPlan]:
    if not emails or not models:
        return []
    by_id = {model.pk: model for model in models}
    # Cheap image models are the everyday tools; video is rarer.
    model_weights = [
        (1.5 if model.kind == AIModel.Kind.VIDEO else 6 if model.credits_cost <= 30 else 3) for model in models
    ]
    projects_of: dict[str, list[ProjectPlan]] = {}
    for project in projects:
        projects_of.setdefault(project.owner, []).append(project)
    stacks_of: dict[str, list[StackPlan]] = {}
    for stack in stacks:
        stacks_of.setdefault(stack.owner, []).append(stack)

    plans = []
    for index in range(options.generations):
        owner = rng.choices(emails, weights)[0]
        model = rng.choices(models, model_weights)[0]
        status = STATUS_PATTERN[index % len(STATUS_PATTERN)]
        stack = preset = None
        style_roll = index % 5
        if style_roll == 1 and stacks_of.get(owner):
            chosen = rng.choice(stacks_of[owner])
            suited = [by_id[m] for m in chosen.models if m in by_id]
            model = rng.choice(suited) if suited else model
            stack = (chosen.owner, chosen.name)
        elif style_roll == 3 and presets:
            fitting = [p for p in presets if model.pk in p.recommended_models]
            preset = rng.choice(fitting).slug if fitting else None
        video = model.kind == AIModel.Kind.VIDEO
        prompt = rng.choice(VIDEO_PROMPTS if video else IMAGE_PROMPTS)
        negative = NEGATIVE_PROMPT if model.supports_negative_prompt and rng.random() < 0.3 else ""
        error = rng.choice(FAILURES) if status == Status.FAILED else ""
        run_seconds = rng.randint(40, 180) if video else rng.randint(3, 15)
        if error.startswith("Timed out"):  # failed by the sweep, after the timeout
            run_seconds += 600
        own_projects = projects_of.get(owner, [])
        project = rng.choice(own_projects).name if own_projects and rng.random() < 0.75 else None
        plans.append(
            GenerationPlan(
                key=f"{KEY_PREFIX}{index + 1:04d}",
                owner=owner,
                model=model.pk,
                prompt=prompt,
                negative_prompt=negative,
                parameters=_parameters(model, rng),
                status=status,
                at=rng.uniform(0.35, 0.99),
                project=project,
                stack=stack,
                preset=preset,
                error=error,
                favorite=status == Status.COMPLETED and rng.random() < 0.2,
                run_seconds=run_seconds,
            )
        )
    return plans


# --- counting --------------------------------------------------------------------------


def demo_counts(now: datetime | None = None) -> dict[str, int]:
    """What the demo people have, in the order the summary shows it."""
    now = now or timezone.now()
    people = demo_users()
    generations = Generation.objects.filter(user__in=people)
    stacks = StyleStack.objects.filter(user__in=people)
    by_status = Counter(generations.order_by().values_list("status", flat=True))
    counts = {
        "users": people.count(),
        "registered in the last 7 days": people.filter(created_at__gte=now - timedelta(days=7)).count(),
        "projects": Project.objects.filter(user__in=people).count(),
        "generations": sum(by_status.values()),
    }
    counts.update({f"generations: {status}": by_status.get(status, 0) for status in Status.values})
    counts.update(
        {
            "style stacks": stacks.count(),
            "style stacks: from presets": stacks.filter(created_from=StyleStack.CreatedFrom.PRESET).count(),
            "style stacks: forks": stacks.filter(created_from=StyleStack.CreatedFrom.FORK).count(),
            "style stacks: public": stacks.filter(visibility=StyleStack.Visibility.PUBLIC).count(),
            "contributors": StackContributor.objects.filter(stack__in=stacks).count(),
            "ledger rows": CreditTransaction.objects.filter(user__in=people).count(),
        }
    )
    return counts


# --- carrying it out -------------------------------------------------------------------


class ProgressLike(Protocol):
    def step(self) -> None: ...

    def done(self, note: str = "") -> None: ...


ProgressFactory = Callable[[str, int], ProgressLike]


@contextmanager
def _quiet_generation_logs():
    """The services log every completion and failure (right for a worker); 145 of them
    would bury the progress lines."""
    logger = logging.getLogger("generations.services")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


class Seeder:
    """Carries out a :class:`Plan`, phase by phase: users, projects, style stacks,
    generations. ``progress(label, total)`` returns an object with ``step()`` and
    ``done(note)``."""

    def __init__(self, plan: Plan, *, progress: ProgressFactory, now: datetime | None = None):
        self.plan = plan
        self.progress = progress
        self.now = now or timezone.now()
        self.users: dict[str, User] = {}
        self.created = Counter()
        self.samples: dict[str, list[dict]] = {}  # model kind → outputs of a real render
        self.rendered = 0

    def run(self) -> None:
        with _quiet_generation_logs():
            self.seed_users()
            self.seed_projects()
            self.seed_stacks()
            self.seed_generations()

    # -- helpers --

    def _when(self, owner: str, fraction: float) -> datetime:
        """A moment in ``owner``'s life with us: 0 = registration, 1 = now."""
        registered = self.users[owner].created_at
        return registered + (self.now - registered) * fraction

    def _capped(self, existing: int, target: int) -> Callable[[], bool]:
        count = [existing]

        def room() -> bool:
            if count[0] >= target:
                return False
            count[0] += 1
            return True

        return room

    # -- users --

    def seed_users(self) -> None:
        plans = self.plan.users
        bar = self.progress("users", len(plans))
        existing = {user.email: user for user in demo_users()}
        password_hash = None
        for person in plans:
            user = existing.get(person.email)
            if user is None:
                # Hashed once: the real hasher takes ~0.5 s a password.
                password_hash = password_hash or make_password(self.plan.options.password)
                user = self._make_user(person, password_hash)
                self.created["users"] += 1
            self.users[person.email] = user
            bar.step()
        bar.done(f"{self.created['users']} added")

    @transaction.atomic
    def _make_user(self, person: UserPlan, password_hash: str) -> User:
        # The sign-up trigger gives the profile and the bonus; then the "Demo credits".
        user = User.objects.create_user(person.email, None, raw_user_meta_data={"full_name": person.full_name})
        registered = self.now - person.age
        changes = {"password": password_hash, "created_at": registered, "email_confirmed_at": registered}
        if person.last_seen is not None:
            changes["last_login"] = self.now - person.last_seen
        User.objects.filter(pk=user.pk).update(**changes)
        Profile.objects.filter(pk=user.pk).update(created_at=registered)
        credits_grant(user=user, amount=person.demo_credits, reason=DEMO_CREDITS_REASON)
        user.refresh_from_db()
        return user

    # -- projects --

    def seed_projects(self) -> None:
        plans = self.plan.projects
        bar = self.progress("projects", len(plans))
        people = list(self.users.values())
        existing = {(p.user_id, p.name.lower()) for p in Project.objects.filter(user__in=people)}
        room = self._capped(Project.objects.filter(user__in=demo_users()).count(), self.plan.options.projects)
        for plan in plans:
            owner = self.users[plan.owner]
            if (owner.pk, plan.name.lower()) not in existing and room():
                with transaction.atomic():
                    project = project_create(
                        user=owner, name=plan.name, description=plan.description, visibility=plan.visibility
                    )
                    Project.objects.filter(pk=project.pk).update(created_at=self._when(plan.owner, plan.at))
                self.created["projects"] += 1
            bar.step()
        bar.done(f"{self.created['projects']} added")

    # -- style stacks --

    def _stack(self, owner: str, name: str) -> StyleStack | None:
        return StyleStack.objects.filter(user=self.users[owner], name=name).order_by("created_at").first()

    def seed_stacks(self) -> None:
        plans = self.plan.stacks
        bar = self.progress("stacks", len(plans))
        room = self._capped(StyleStack.objects.filter(user__in=demo_users()).count(), self.plan.options.stacks)
        presets = {preset.slug: preset for preset in StylePreset.objects.filter(is_active=True)}
        for plan in plans:
            if self._stack(plan.owner, plan.name) is None and room():
                parent = self._stack(*plan.parent) if plan.parent else None
                preset = presets.get(plan.preset) if plan.preset else None
                if (plan.kind == "fork" and parent is None) or (plan.kind == "preset" and preset is None):
                    bar.step()  # what it copies is gone (deleted by hand): skip it
                    continue
                with transaction.atomic():
                    self._make_stack(plan, parent, preset)
                self.created["stacks"] += 1
            bar.step()
        bar.done(f"{self.created['stacks']} added")

    def _make_stack(self, plan: StackPlan, parent: StyleStack | None, preset: StylePreset | None) -> StyleStack:
        owner = self.users[plan.owner]
        at = self._when(plan.owner, plan.at)
        if plan.kind == "fork":
            stack = stylestack_fork(stack=parent, user=owner, name=plan.name)
            at = min(max(at, parent.created_at + timedelta(hours=1)), self.now - timedelta(minutes=30))
        elif plan.kind == "preset":
            stack = stylestack_from_preset(preset=preset, user=owner, name=plan.name)
        else:
            _, description, tags, category, document = STACK_TEMPLATES[plan.template]
            stack = stylestack_create(
                user=owner, name=plan.name, style=document, description=description, tags=tags, category=category
            )
        if plan.visibility != stack.visibility:
            stack = stylestack_update(stack=stack, user=owner, data={"visibility": plan.visibility})
        if plan.edited:  # a second version, so the history is not empty
            style = {**stack.style, "prompt_blocks": {**stack.style["prompt_blocks"], **STACK_EDIT}}
            stack = stylestack_update(stack=stack, user=owner, data={"style": style})
        for email, role in plan.contributors:
            contributor_add(stack=stack, user=owner, email=email, role=role)
        StyleStack.objects.filter(pk=stack.pk).update(created_at=at)
        return stack

    # -- generations --

    def seed_generations(self) -> None:
        plans = self.plan.generations
        bar = self.progress("generations", len(plans))
        mine = Generation.objects.filter(user__in=demo_users())
        keys = set(mine.filter(idempotency_key__startswith=KEY_PREFIX).values_list("idempotency_key", flat=True))
        room = self._capped(mine.count(), self.plan.options.generations)
        models = {model.pk: model for model in AIModel.objects.filter(is_active=True)}
        presets = {preset.slug: preset for preset in StylePreset.objects.filter(is_active=True)}
        for plan in plans:
            if plan.key not in keys and plan.model in models and room():
                self._make_generation(plan, models[plan.model], presets)
                self.created["generations"] += 1
            bar.step()
        bar.done(f"{self.created['generations']} added, {self.rendered} rendered by the local provider")

    @transaction.atomic
    def _make_generation(self, plan: GenerationPlan, model: AIModel, presets: dict) -> Generation:
        owner = self.users[plan.owner]
        project = (
            Project.objects.filter(user=owner, name__iexact=plan.project, archived_at__isnull=True).first()
            if plan.project
            else None
        )
        stack = self._stack(*plan.stack) if plan.stack else None
        preset = presets.get(plan.preset) if plan.preset else None
        self._afford(owner, model.credits_cost)
        generation = generation_create(
            user=owner,
            ai_model=model,
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            parameters=plan.parameters,
            project=project,
            idempotency_key=plan.key,
            style_stack=stack,
            preset=preset,
        )
        # When it was asked for: after the things it uses, and early enough to be done.
        created = self._when(plan.owner, plan.at)
        for used in (project, stack):
            if used is not None:
                created = max(created, used.created_at + timedelta(minutes=1))
        created = min(created, self.now - timedelta(minutes=15))
        started = created + timedelta(seconds=2)
        finished = started + timedelta(seconds=plan.run_seconds)
        times = {"created_at": created, "started_at": started, "completed_at": finished}

        if plan.status == Status.CANCELLED:
            generation_cancel(user=owner, generation_id=generation.pk)
            times = {"created_at": created, "completed_at": created + timedelta(seconds=plan.run_seconds)}
        elif plan.status == Status.PENDING:
            times = {"created_at": self.now - timedelta(seconds=30 + plan.run_seconds)}
        else:
            self._claim(generation)
            if plan.status == Status.PROCESSING:
                created = self.now - timedelta(seconds=60 + plan.run_seconds)
                times = {"created_at": created, "started_at": created + timedelta(seconds=2)}
            elif plan.status == Status.FAILED:
                generation_fail(generation=generation, error=plan.error, from_statuses=[Status.PROCESSING])
            else:
                outputs = self._outputs(generation)
                generation_complete(
                    generation=generation, outputs=outputs, provider_request_id=f"local-{generation.pk}"
                )
                if plan.favorite:
                    generation_set_favorite(generation=generation, is_favorite=True)
        Generation.objects.filter(pk=generation.pk).update(**times)
        return generation

    def _afford(self, owner: User, cost: int) -> None:
        """The sign-up grant covers the planned generations; a top-up run with bigger
        numbers may need more: granted the same way."""
        balance = Profile.objects.filter(pk=owner.pk).values_list("credits_balance", flat=True).get()
        if balance < cost:
            credits_grant(user=owner, amount=_round_up(cost - balance, 500), reason=DEMO_CREDITS_REASON)

    @staticmethod
    def _claim(generation: Generation) -> None:
        """pending → processing, for this generation only: generation_claim_next takes
        the oldest pending row of anyone, which would be someone else's (or another demo
        generation left pending on purpose). The same conditional update it makes."""
        claimed = Generation.objects.filter(pk=generation.pk, status=Status.PENDING).update(
            status=Status.PROCESSING, started_at=timezone.now(), attempts=F("attempts") + 1
        )
        if claimed != 1:
            raise RuntimeError(f"demo generation {generation.pk} was not pending")

    def _outputs(self, generation: Generation) -> list[dict]:
        """Real files from the LocalProvider, stored as the worker stores them, for a
        handful (and the first of each kind); the rest get copies of those files, as
        rendering every one would be slow. Copies, not shared names: each generation
        owns its files, so deleting one never takes another's."""
        kind = generation.ai_model.kind
        if self.rendered < self.plan.options.render or kind not in self.samples:
            outputs = store_outputs(generation, LocalProvider().run(generation).outputs)
            self.rendered += 1
            self.samples[kind] = outputs
            return outputs
        count = max(1, int((generation.parameters or {}).get("num_images", 1))) if kind == "image" else 1
        return [_copy_output(self.samples[kind][0], generation, index) for index in range(count)]


def _copy_output(sample: dict, generation: Generation, index: int) -> dict:
    """``sample``'s files (output and thumbnail) copied to ``generation``'s names."""
    copied = dict(sample)
    for key in ("path", "thumbnail_path"):
        extension = sample[key].rsplit("/", 1)[-1].split(".", 1)[1]  # "png", "thumb.webp"
        with default_storage.open(sample[key]) as handle:
            copied[key] = default_storage.save(output_name(generation, index, extension), handle)
    return copied
