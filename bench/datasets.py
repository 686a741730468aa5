"""Synthetic benchmark data: fills an empty, freshly migrated database, fast.

Everything is set-based SQL run on the server (``INSERT … SELECT … FROM
generate_series``) through psycopg 3 as the database owner; no Django, so this module
imports without settings. What the data looks like:

* **People**: ``heavy_users`` heavy ones (``bench-heavy-0000@bench.velro.local`` …), then
  light ones (``bench-user-00000@bench.velro.local`` …), then, if the spec has one, the
  whale (``bench-whale@bench.velro.local``). Inserted into ``auth.users``:
  the ``on_auth_user_created`` trigger gives each a profile and the 100-credit sign-up
  bonus through ``public.credits_apply()``, so the ledger invariant holds. Passwords are
  unusable (``!`` + 40 characters, like Django's ``make_password(None)``).
* **Sessions**: ``SESSIONS_PER_USER`` signed-in devices per person in ``auth.sessions``
  (what every request's access token is checked against, by primary key).
* **Generations**: the whale owns exactly ``whale`` rows, heavy person *i* exactly
  ``per_heavy``, the rest go round robin to the light people. Row *n* of the load (0 … generations-1) is created at
  ``start + n·(365 days / generations)`` plus a jitter smaller than that step, so
  created_at is unique and rows are inserted in global created_at order. Who owns row
  *n* comes from a fixed permutation of the row numbers, so every person's rows are
  scattered over the whole year and over the whole heap, as in an append-only table
  that many people write to (a heavy person's newest 50 rows sit on 50 different heap
  pages). As in production, the free space map puts a few per cent of the rows into
  room left on a nearby earlier page, so the heap order is created_at order but for
  small local swaps (pg_stats correlation 0.9999). Status ~90 % completed (outputs as the local provider
  writes them), ~5 % failed, ~3 % cancelled, ~2 % pending; models cycle over the active
  catalog but the last (by id), the rare one, in ~0.5 % of the rows, with their cost as
  credits_charged; ~20 % carry an adapted prompt; ~0.5 % favourites; ~30 % of the heavy
  people's and the whale's rows belong to one of their six projects: the first holds 1 %,
  the other five ~5.8 % each. So every filter of the list has values with few matches.
* **Ledger** (``ledger``): besides everyone's sign-up bonus (dated back to the sign-up),
  the heavy people and the whale have one ledger row per generation of theirs: purchases,
  a few grants and the usage of their generations, with the balance kept equal to the sum
  (see ``_Loader.ledger``).
* **Style stacks**: ``public_stacks`` public ones plus 10 % private ones, owners spread
  over everyone, names, tags and descriptions drawn from ``STYLE_WORDS`` (six distinct
  words per stack) so that any one word is in 2.4–2.8 % of the stacks (full-text search
  benchmark: explore?q=<word>), a valid v2 style document, ~1 % featured, skewed usage
  and fork counts, creation times spread over the year.

Everything but the unusable password hashes is deterministic: values come from hashes
(``hashint8extended``) and arithmetic on the row numbers, ids from md5 of a fixed
string (with the version-4 bits set), times from the start of the load's day.

The database triggers do their work: the sign-up trigger, ``generations.count_in_project``
(projects.generation_count), ``style_stacks_search`` (search_vector) and every
foreign-key check run as usual (measured on the "1m" spec: count_in_project costs ~9 s
of ~55 s of generations; the index and WAL writes are most of the rest). Only the
``server_columns`` triggers of ``style_stacks`` and ``projects`` (and ``status_events_insert``
of generations: loaded history is no status event) are switched off, inside
the transaction of one chunk (``ALTER TABLE … DISABLE TRIGGER``, switched on again
before its commit, so a killed load leaves them on): they stamp created_at with now(),
which would give every stack and project the same creation time. As the owner the only
other thing they do is version = 1 / generation_count = 0, which the loader writes
itself.

``load`` commits after each chunk (about ``CHUNK`` rows) and reports it through
``progress``; the marker (``COMMENT ON DATABASE``) is set last, so an interrupted load
leaves none and ``is_loaded`` stays false.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg import sql

VERSION = 4  # 2: sessions; 3: the whale, the heavy people's ledgers, rare filter values;
# 4: a project for every tenth light person, a grant every 50th ledger row (full admin pages at 10k)
SESSIONS_PER_USER = 3
EMAIL_DOMAIN = "bench.velro.local"
CHUNK = 100_000
SPAN = timedelta(days=365)
PROJECTS_PER_HEAVY_USER = 6
PRIVATE_STACKS_RATIO = 0.10  # private stacks on top of the public ones
SIGNUP_DAYS_BEFORE = 30  # everyone signed up this long before the first generation
_SEED = 0x5E1F0  # hashint8extended seeds derive from this


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # "10k", "1m", "smoke-small", "smoke-large"
    users: int  # total people, heavy ones included
    heavy_users: int  # people with `per_heavy` generations each
    per_heavy: int
    generations: int  # total generations (heavy ones + the rest spread over the light users)
    public_stacks: int  # public style stacks (explore benchmark)
    whale: int = 0  # the whale's generations (one more person, bench-whale@…); 0: no whale
    ledger: bool = False  # the heavy people and the whale get a ledger of one row per generation


# The whale holds a tenth of the generations of each set (100k of the 1M): the admin's
# change page of that person and their API lists grow with the set, the heavy people's
# (10k rows in the 1M set) are the comparison.
SPECS: dict[str, DatasetSpec] = {
    "10k": DatasetSpec(
        "10k", users=1_000, heavy_users=2, per_heavy=4_500, generations=10_500, public_stacks=1_000,
        whale=1_000, ledger=True,
    ),
    "1m": DatasetSpec(
        "1m", users=10_000, heavy_users=60, per_heavy=10_000, generations=1_000_000, public_stacks=100_000,
        whale=100_000, ledger=True,
    ),
    "smoke-small": DatasetSpec(
        "smoke-small", users=40, heavy_users=1, per_heavy=300, generations=500, public_stacks=100,
        whale=50, ledger=True,
    ),
    "smoke-large": DatasetSpec(
        "smoke-large", users=80, heavy_users=2, per_heavy=600, generations=2_000, public_stacks=300,
        whale=200, ledger=True,
    ),
}  # fmt: skip

# Style vocabulary for stack names, tags and descriptions. Every word is one English
# lexeme, and no two share a stem (websearch_to_tsquery('english', word) finds exactly
# the stacks that use that word).
STYLE_WORDS: tuple[str, ...] = tuple(
    """
    noir neon watercolor cyberpunk baroque gothic pastel vaporwave steampunk minimalist surreal impressionist cubist
    futurist deco brutalist bauhaus rococo renaissance ukiyoe anime manga chibi pixel lowpoly isometric voxel
    claymation stopmotion papercut origami collage graffiti stencil lithograph woodcut etching charcoal pencil ink
    gouache acrylic fresco mosaic sepia monochrome duotone technicolor kodachrome polaroid cinematic anamorphic bokeh
    tiltshift fisheye macro panoramic aerial underwater infrared thermal holographic iridescent chrome metallic glitch
    datamosh synthwave retrowave outrun lofi dreamy ethereal whimsical moody gloomy melancholic nostalgic romantic
    dystopian utopian apocalyptic solarpunk dieselpunk biopunk atompunk medieval victorian edwardian samurai viking
    aztec tribal folk celtic nordic byzantine moorish persian ottoman zen wabisabi kawaii harajuku streetwear couture
    editorial fashion portrait landscape seascape cityscape skyline desert jungle arctic tundra volcanic cosmic nebula
    galactic lunar celestial astral mystic occult arcane alchemy wizard dragon fairy goblin elven mythic legendary
    heroic epic tragic cartoon caricature pulp grindhouse western horror slasher giallo thriller spy heist gangster
    detective astronaut robot android cyborg mecha kaiju zombie vampire werewolf ghost haunted spooky halloween
    christmas winter autumn summer tropical beach sunset sunrise twilight midnight golden foggy misty rainy stormy
    snowy dusty smoky hazy glowing luminous shadowy silhouette chiaroscuro tenebrism sfumato impasto pointillism
    fauvism dada psychedelic tiedye boho rustic farmhouse industrial scandinavian japandi mediterranean tuscan
    parisian bohemian grunge punk emo goth rave disco funk jazz blues rockabilly pinup burlesque cabaret circus
    carnival masquerade opera ballet theatrical documentary reportage candid analog vintage retro antique
    """.split()
)
# Stack name endings and description templates: none of their words is a STYLE_WORDS stem.
_NAME_NOUNS = ("Study", "Mood", "Look", "Series", "Vision", "Recipe", "Blend", "Treatment", "Palette", "Aesthetic")
_DESCRIPTION_TEMPLATES = (
    "A {a} take on {b} imagery, tuned for consistent results across models.",
    "{A} meets {b}: bold shapes, careful composition and a restrained colour grade.",
    "My go-to {a} recipe with a touch of {b}. Works best for characters and wide shots.",
    "Layered {a} textures, {b} accents and soft contrast. Fork it and make it yours.",
    "{A} style with {b} undertones, built for posters, covers and key art.",
    "Everything I learned about {a} and {b} looks, in one reusable stack.",
)

# Prompt pieces: subject (20–45 chars) + scene (20–55) + finish (20–55) → 60–160 chars.
_SUBJECTS = (
    "a lone astronaut in a worn suit",
    "an old fisherman mending his nets",
    "a red fox curled up asleep",
    "a tiny robot holding a paper umbrella",
    "a street musician playing the violin",
    "a lighthouse keeper with a lantern",
    "two children chasing paper kites",
    "a knight resting beside a dead horse",
    "an owl perched on a mossy branch",
    "a chef plating a dessert with tweezers",
    "a vintage motorcycle with chrome details",
    "a girl reading under a giant mushroom",
    "a city bus covered in ivy",
    "a cat wearing a tiny wizard hat",
    "a jazz trio on a small stage",
    "a woman in a yellow raincoat",
    "a steam locomotive crossing a bridge",
    "a bonsai tree in a ceramic pot",
    "a deep sea diver with a brass helmet",
    "an elderly couple dancing slowly",
    "a glass teapot full of blooming tea",
    "a wolf howling on a rocky ridge",
    "a skateboarder mid-air over stairs",
    "a hot air balloon shaped like a whale",
    "a blacksmith hammering a glowing blade",
)
_SCENES = (
    "in a rain-soaked alley at night",
    "on a quiet beach at dawn with gentle waves",
    "inside an abandoned greenhouse",
    "in a crowded night market full of lanterns",
    "on the surface of a frozen lake",
    "in a library with impossibly tall shelves",
    "at the edge of a cliff above the clouds",
    "in a sunlit kitchen with open windows",
    "among ruins overgrown by wildflowers",
    "on a rooftop garden overlooking the harbour",
    "in a dense forest with light shafts through the trees",
    "inside a cosy cabin during a snowstorm",
    "in a busy train station at rush hour",
    "on a floating island above a calm sea",
    "in a cluttered workshop full of gears",
    "at a roadside diner lit by a flickering sign",
    "in an empty theatre with red velvet seats",
    "on a narrow bridge over a misty canyon",
    "in a field of sunflowers under a wide sky",
    "in a flooded subway tunnel",
)
_FINISHES = (
    "highly detailed, sharp focus",
    "soft light, shallow depth of field, 85mm lens",
    "wide angle, dramatic perspective",
    "muted colours, film grain",
    "vibrant colours, high contrast, studio quality",
    "rim lighting, volumetric fog, 4k",
    "golden hour glow, long shadows",
    "painterly brush strokes, textured canvas",
    "flat illustration, clean lines, limited palette",
    "photorealistic, natural light, candid moment",
    "isometric view, soft pastel tones",
    "moody blue tones, reflections on wet ground",
    "symmetrical composition, centred subject",
    "dreamlike haze, glowing particles in the air",
    "black and white, deep shadows, strong grain",
)
_ADAPTATIONS = (
    "high-contrast black and white, hard key light, deep shadows, anamorphic lens flare, 35mm film grain",
    "saturated primaries, bold graphic shapes, thick outlines, halftone texture, retro print look",
    "soft diffused light, pastel palette, gentle bloom, airy composition, delicate textures",
    "cinematic teal and orange grade, shallow depth of field, volumetric light, widescreen framing",
    "loose watercolor washes, visible paper texture, bleeding edges, hand-painted feel, soft palette",
    "neon magenta and cyan glow, wet reflective streets, light haze, futuristic signage, night mood",
    "warm golden light, long shadows, dust in the air, nostalgic film tones, gentle vignette",
)
_NEGATIVE_PROMPTS = ("blurry, low quality, watermark", "text, logo, extra fingers", "oversaturated, jpeg artifacts")
_ERRORS = (
    "Provider error: the upstream service timed out after 120 s.",
    "The provider rejected the prompt (content policy).",
    "Timed out: still processing after 600 s (worker lost).",
    "Local rendering failed: cannot allocate the output image.",
)
_STACK_CATEGORIES = ("general", "director", "genre", "technique", "cinematic", "photographic")
_LIGHTING = (
    "hard directional light, deep shadows",
    "soft window light, gentle falloff",
    "neon practicals, coloured rim light",
    "overcast daylight, no harsh shadows",
    "warm tungsten lamps, cosy pools of light",
    "backlit haze, glowing silhouettes",
)


def signature(spec: DatasetSpec) -> str:
    return (
        f"velro-bench v{VERSION} {spec.name} users={spec.users} heavy={spec.heavy_users}x{spec.per_heavy} "
        f"whale={spec.whale} ledger={'yes' if spec.ledger else 'no'} "
        f"generations={spec.generations} stacks={spec.public_stacks}"
    )


def heavy_user_emails(spec: DatasetSpec) -> list[str]:
    return [f"bench-heavy-{i:04d}@{EMAIL_DOMAIN}" for i in range(spec.heavy_users)]


WHALE_EMAIL = f"bench-whale@{EMAIL_DOMAIN}"


def whale_email(spec: DatasetSpec) -> str | None:
    """The whale's email, or None if the spec has no whale."""
    return WHALE_EMAIL if spec.whale else None


def _whales(spec: DatasetSpec) -> int:
    return 1 if spec.whale else 0


def light_user_emails(spec: DatasetSpec, n: int) -> list[str]:
    """The first ``n`` light people. ValueError if the spec has fewer."""
    light = spec.users - spec.heavy_users - _whales(spec)
    if not 0 <= n <= light:
        raise ValueError(f"{spec.name} has {light} light users, not {n}")
    return [f"bench-user-{i:05d}@{EMAIL_DOMAIN}" for i in range(n)]


def is_loaded(conn: psycopg.Connection, spec: DatasetSpec) -> bool:
    """True if the database carries this spec's marker (set by a finished ``load``).

    Ends the transaction its query opened (if none was open before), so the connection is
    not left idle in a transaction."""
    was_idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    row = conn.execute(
        "SELECT pg_catalog.shobj_description(d.oid, 'pg_database') FROM pg_catalog.pg_database AS d"
        " WHERE d.datname = pg_catalog.current_database()"
    ).fetchone()
    if was_idle and not conn.autocommit:
        conn.rollback()
    return row is not None and row[0] == signature(spec)


def _check(spec: DatasetSpec) -> None:
    light = spec.users - spec.heavy_users - _whales(spec)
    light_rows = spec.generations - spec.heavy_users * spec.per_heavy - spec.whale
    problems = []
    if spec.heavy_users < 0 or spec.per_heavy < 0 or spec.public_stacks < 0 or spec.whale < 0:
        problems.append("counts must not be negative")
    if spec.heavy_users > 10_000 or light > 100_000:
        problems.append("at most 10,000 heavy and 100,000 light users (email numbering)")
    if light < 1 and light_rows > 0:
        problems.append("light generations but no light users")
    if light_rows < 0:
        problems.append("heavy_users * per_heavy + whale exceeds generations")
    if spec.generations < 1 or light < 0:
        problems.append("need at least one generation and users >= heavy_users")
    if problems:
        raise ValueError(f"bad dataset spec {spec.name}: " + "; ".join(problems))


def _coprime_near(n: int, fraction: float) -> int:
    """An integer near ``fraction * n`` that is coprime with ``n`` (a multiplier that
    permutes 0 … n-1)."""
    if n <= 2:
        return 1
    candidate = max(1, int(n * fraction))
    while math.gcd(candidate, n) != 1:
        candidate += 1
    return candidate


def _uuid(expr: str) -> str:
    """SQL for a deterministic version-4-shaped uuid from the md5 of a text expression."""
    return f"(overlay(overlay(md5({expr}) placing '4' from 13) placing '8' from 17))::uuid"


def _person_uuid(person_expr: str) -> str:
    return _uuid(f"'velro-bench:user:' || ({person_expr})::text")


def _project_uuid(heavy_expr: str, index_expr: str) -> str:
    return _uuid(f"'velro-bench:project:' || ({heavy_expr})::text || ':' || ({index_expr})::text")


# Which of its owner's projects a generation in a project belongs to: the first holds 1 %
# of the owner's rows (a filter with few matches), the others share 29 %.
_PROJECT_INDEX = "CASE WHEN w.u3 %% 100 < 1 THEN 0 ELSE 1 + w.u3 / 100 %% (%(per_project)s - 1) END"


class _Loader:
    def __init__(self, conn: psycopg.Connection, spec: DatasetSpec, progress: Callable[[str], object]):
        self.conn = conn
        self.spec = spec
        self.progress = progress
        self.started = time.monotonic()
        self.light = spec.users - spec.heavy_users - _whales(spec)
        # People are numbered: the heavy ones, the light ones, the whale last.
        self.whale = spec.users - 1 if spec.whale else -1

    # --- helpers -----------------------------------------------------------------------

    def say(self, what: str, done: int, total: int) -> None:
        self.progress(f"{what} {done:,}/{total:,}  ({time.monotonic() - self.started:.1f} s)")

    def begin(self) -> None:
        """Settings for one chunk's transaction (local: gone at commit)."""
        self.conn.execute(
            "SELECT set_config('statement_timeout', '0', true), set_config('synchronous_commit', 'off', true)"
        )

    def chunks(self, total: int):
        for lo in range(0, total, CHUNK):
            yield lo, min(lo + CHUNK, total)

    # --- steps -------------------------------------------------------------------------

    def prepare(self) -> None:
        conn = self.conn
        exists = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM auth.users WHERE email LIKE %s)", [f"%@{EMAIL_DOMAIN}"]
        ).fetchone()[0]
        if exists:
            raise RuntimeError("benchmark people already exist: load() needs an empty, freshly migrated database")
        models = conn.execute(
            "SELECT id, credits_cost, kind, supports_negative_prompt FROM public.ai_models WHERE is_active ORDER BY id"
        ).fetchall()
        if not models:
            raise RuntimeError("no active AI models: run the migrations (they seed the catalog) first")
        self.model_ids = [m[0] for m in models]
        self.model_costs = [m[1] for m in models]
        self.model_kinds = [m[2] for m in models]
        self.model_negative = [m[3] for m in models]
        # The year of data ends at the start of today (UTC), so reruns on one day are equal.
        self.end = conn.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'").fetchone()[0]
        self.start = self.end - SPAN
        conn.commit()

    def users(self) -> None:
        spec = self.spec
        salt = secrets.token_hex(16)  # the unusable password suffixes are random, like Django's
        for lo, hi in self.chunks(spec.users):
            self.begin()
            self.conn.execute(
                f"""
                INSERT INTO auth.users (id, email, encrypted_password, raw_user_meta_data, is_active,
                                        email_confirmed_at, created_at, updated_at)
                SELECT {_person_uuid("p")}, e.email,
                       '!' || left(md5(%(salt)s || p::text) || md5(p::text || %(salt)s), 40),
                       jsonb_build_object('full_name', e.full_name), true, t.at, t.at, t.at
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS p
                CROSS JOIN LATERAL (
                  SELECT CASE WHEN p < %(heavy)s
                              THEN 'bench-heavy-' || lpad(p::text, 4, '0') || '@' || %(domain)s
                              WHEN p = %(whale)s THEN %(whale_email)s
                              ELSE 'bench-user-' || lpad((p - %(heavy)s)::text, 5, '0') || '@' || %(domain)s
                         END AS email,
                         CASE WHEN p < %(heavy)s THEN 'Heavy Bencher ' || p::text
                              WHEN p = %(whale)s THEN 'Whale Bencher'
                              ELSE 'Bench Person ' || (p - %(heavy)s)::text END AS full_name
                ) AS e
                CROSS JOIN LATERAL (
                  SELECT %(first)s::timestamptz + p * (%(spread)s::interval / greatest(%(users)s, 1)) AS at
                ) AS t
                ORDER BY p
                """,
                {
                    "lo": lo,
                    "hi": hi,
                    "heavy": spec.heavy_users,
                    "whale": self.whale,
                    "whale_email": WHALE_EMAIL,
                    "domain": EMAIL_DOMAIN,
                    "salt": salt,
                    "first": self.start - timedelta(days=SIGNUP_DAYS_BEFORE),
                    "spread": timedelta(days=SIGNUP_DAYS_BEFORE - 1),
                    "users": spec.users,
                },
            )
            self.conn.commit()
            self.say("users", hi, spec.users)

    def sessions(self) -> None:
        self.begin()
        self.conn.execute(
            """
            INSERT INTO auth.sessions (user_id, created_at, updated_at, refreshed_at, user_agent, ip)
            SELECT u.id, u.created_at, u.created_at, u.created_at + d * interval '1 day',
                   (ARRAY['Firefox on Linux', 'Safari on iPhone', 'Chrome on Windows'])[d], '127.0.0.1'
            FROM auth.users AS u CROSS JOIN generate_series(1, %(n)s) AS d
            WHERE u.email LIKE %(like)s
            """,
            {"n": SESSIONS_PER_USER, "like": f"%@{EMAIL_DOMAIN}"},
        )
        self.conn.commit()
        self.say("sessions", self.spec.users * SESSIONS_PER_USER, self.spec.users * SESSIONS_PER_USER)

    def projects(self) -> None:
        spec = self.spec
        owners = spec.heavy_users + _whales(spec)
        if not owners:
            return
        self.begin()
        self.conn.execute("ALTER TABLE public.projects DISABLE TRIGGER server_columns")
        self.conn.execute(
            f"""
            INSERT INTO public.projects (id, user_id, name, description, visibility, generation_count,
                                         created_at, updated_at)
            SELECT {_project_uuid("h", "j")}, {_person_uuid("h")},
                   (ARRAY['Campaign', 'Moodboard', 'Client work', 'Experiments', 'Portfolio', 'Storyboard',
                          'Concepts', 'Album art'])[1 + (h + j) %% 8] || ' ' || (j + 1)::text,
                   'Benchmark project ' || (j + 1)::text,
                   CASE WHEN j = 0 THEN 'public' ELSE 'private' END, 0,
                   %(start)s::timestamptz - (j + 1) * interval '1 day', %(start)s::timestamptz
            FROM (SELECT h, j
                    FROM (SELECT h FROM generate_series(0, %(heavy)s - 1) AS h
                          UNION ALL SELECT %(whale)s WHERE %(whale)s >= 0) AS o(h),
                         generate_series(0, %(per)s - 1) AS j
                  -- One empty project for every tenth light person: the admin's projects
                  -- page is full (100 rows) on the small data set too, so its 1M ÷ 10k
                  -- compares the same page.
                  UNION ALL
                  SELECT h, 0 FROM generate_series(%(heavy)s, %(users)s - 1) AS h
                   WHERE h %% 10 = 0 AND h <> %(whale)s) AS hj
            ORDER BY h, j
            """,
            {
                "heavy": spec.heavy_users,
                "whale": self.whale,
                "per": PROJECTS_PER_HEAVY_USER,
                "start": self.start,
                "users": spec.users,
            },
        )
        self.conn.execute("ALTER TABLE public.projects ENABLE TRIGGER server_columns")
        made = self.conn.execute("SELECT count(*) FROM public.projects").fetchone()[0]
        self.conn.commit()
        self.say("projects", made, made)

    def generations(self) -> None:
        spec = self.spec
        total = spec.generations
        heavy_rows = spec.heavy_users * spec.per_heavy
        span_us = int(SPAN.total_seconds() * 1_000_000)
        params = {
            "total": total,
            "mul": _coprime_near(total, 0.6180339887),
            "add": total // 3,
            "heavy": spec.heavy_users,
            "heavy_rows": heavy_rows,
            "whale": self.whale,
            "whale_rows": spec.whale,
            "owned_rows": spec.whale + heavy_rows,  # rows of people with projects
            "light": max(self.light, 1),
            "per_project": PROJECTS_PER_HEAVY_USER,
            "seed": _SEED,
            "start": self.start,
            "step_us": span_us // total,  # n·span/total = n·step + n·rest/total, without overflow
            "rest_us": span_us % total,
            "model_ids": self.model_ids,
            "model_costs": self.model_costs,
            "model_kinds": self.model_kinds,
            "model_negative": self.model_negative,
            "subjects": list(_SUBJECTS),
            "scenes": list(_SCENES),
            "finishes": list(_FINISHES),
            "adaptations": list(_ADAPTATIONS),
            "negatives": list(_NEGATIVE_PROMPTS),
            "errors": list(_ERRORS),
        }
        # Built in layers, each fenced with OFFSET 0 so that its values are computed once per
        # row (a pulled-up subquery would repeat its expressions at every use): r: the row's
        # slot in the permutation (k) and four hash values; w: whose row, which model; a: ids,
        # status, created_at, prompt; b: the other times. Generate_series yields n in order
        # and nothing above it reorders rows (no joins, no parallel plans for INSERT), so rows
        # go into the heap in created_at order without sorting wide rows.
        statement = f"""
            INSERT INTO public.generations (
              id, user_id, ai_model_id, project_id, prompt, negative_prompt, parameters, reference_image,
              status, credits_charged, outputs, error_message, provider_request_id, attempts, is_favorite,
              idempotency_key, created_at, started_at, completed_at, updated_at, adaptation, adapted_prompt)
            SELECT b.id, b.user_id, b.model_id, b.project_id, b.prompt,
                   CASE WHEN b.negative_ok AND b.u4 %% 10 = 0
                        THEN (%(negatives)s::text[])[1 + b.u4 / 10 %% cardinality(%(negatives)s::text[])]
                        ELSE '' END,
                   CASE WHEN b.kind = 'video'
                        THEN jsonb_build_object('duration', 5, 'aspect_ratio', '16:9', 'seed', b.u3)
                        ELSE jsonb_build_object('width', 1024, 'height', 1024, 'seed', b.u3, 'num_images', 1)
                   END,
                   '',
                   b.status, b.cost,
                   CASE WHEN b.status <> 'completed' THEN '[]'::jsonb
                        WHEN b.kind = 'video' THEN jsonb_build_array(jsonb_build_object(
                          'url', '/media/generations/' || b.id::text || '/0.gif', 'mime_type', 'image/gif',
                          'width', 320, 'height', 180, 'size', 90000 + b.u2 %% 400000, 'duration', 5))
                        ELSE jsonb_build_array(jsonb_build_object(
                          'url', '/media/generations/' || b.id::text || '/0.png', 'mime_type', 'image/png',
                          'width', 1024, 'height', 1024, 'size', 120000 + b.u2 %% 180000))
                   END,
                   CASE WHEN b.status = 'failed'
                        THEN (%(errors)s::text[])[1 + b.u2 %% cardinality(%(errors)s::text[])] ELSE '' END,
                   CASE WHEN b.status = 'completed' THEN 'local-' || b.id::text ELSE '' END,
                   CASE WHEN b.status IN ('completed', 'failed') THEN 1 ELSE 0 END,
                   b.status = 'completed' AND b.u4 / 1000 %% 180 = 0,
                   NULL, b.created_at, b.started_at, b.completed_at, coalesce(b.completed_at, b.created_at),
                   CASE WHEN b.adapted_prompt <> '' THEN jsonb_build_object(
                          'source', 'preset', 'schema_version', 2,
                          'strategy', CASE WHEN b.kind = 'video' THEN 'descriptive_flow' ELSE 'keyword_weighted' END,
                          'adaptations_applied', jsonb_build_array(b.kind),
                          'blocks_used', '["style", "lighting", "keywords"]'::jsonb,
                          'blocks_trimmed', '[]'::jsonb, 'persistent_elements_used', '[]'::jsonb,
                          'loras_applied', '[]'::jsonb, 'parameters_dropped', '[]'::jsonb,
                          'prompt_truncated', false, 'final_length', length(b.adapted_prompt))
                        ELSE '{{}}'::jsonb END,
                   b.adapted_prompt
            FROM (
              SELECT a.*,
                     CASE WHEN a.status IN ('completed', 'failed')
                          THEN a.created_at + (1 + a.u3 %% 4) * interval '1 second' END AS started_at,
                     CASE WHEN a.status = 'completed' AND a.kind = 'video'
                          THEN a.created_at + (40 + a.u3 %% 120) * interval '1 second'
                          WHEN a.status = 'completed'
                          THEN a.created_at + (6 + a.u3 %% 25) * interval '1 second'
                          WHEN a.status = 'failed' THEN a.created_at + (5 + a.u3 %% 600) * interval '1 second'
                          WHEN a.status = 'cancelled' THEN a.created_at + (1 + a.u3 %% 30) * interval '1 second'
                     END AS completed_at,
                     CASE WHEN a.u4 %% 5 = 0
                          THEN a.prompt || ', '
                               || (%(adaptations)s::text[])[1 + a.u1 / 100 %% cardinality(%(adaptations)s::text[])]
                          ELSE '' END AS adapted_prompt
              FROM (
                SELECT w.*,
                       {_uuid("'velro-bench:generation:' || w.n::text")} AS id,
                       {_person_uuid("w.person")} AS user_id,
                       -- 30 %% in projects: one holds 1 %%, the rest share 29 %%.
                       CASE WHEN w.k < %(owned_rows)s AND w.u3 %% 100 < 30
                            THEN {_project_uuid("w.person", _PROJECT_INDEX)}
                       END AS project_id,
                       (%(model_ids)s::text[])[w.m] AS model_id,
                       (%(model_costs)s::int[])[w.m] AS cost,
                       (%(model_kinds)s::text[])[w.m] AS kind,
                       (%(model_negative)s::bool[])[w.m] AS negative_ok,
                       CASE WHEN w.u1 %% 100 < 90 THEN 'completed' WHEN w.u1 %% 100 < 95 THEN 'failed'
                            WHEN w.u1 %% 100 < 98 THEN 'cancelled' ELSE 'pending' END AS status,
                       %(start)s::timestamptz
                         + (w.n * %(step_us)s + w.n * %(rest_us)s / %(total)s + w.u2 %% greatest(%(step_us)s, 1))
                           * interval '1 microsecond' AS created_at,
                       (%(subjects)s::text[])[1 + w.u1 %% cardinality(%(subjects)s::text[])] || ' '
                         || (%(scenes)s::text[])[1 + w.u2 %% cardinality(%(scenes)s::text[])] || ', '
                         || (%(finishes)s::text[])[1 + w.u3 %% cardinality(%(finishes)s::text[])] AS prompt
                FROM (
                  SELECT r.n, r.k, r.h1 & 2147483647 AS u1, (r.h1 >> 32) & 2147483647 AS u2,
                         r.h2 & 2147483647 AS u3, (r.h2 >> 32) & 2147483647 AS u4,
                         CASE WHEN r.k < %(whale_rows)s THEN %(whale)s
                              WHEN r.k < %(owned_rows)s THEN (r.k - %(whale_rows)s) %% greatest(%(heavy)s, 1)
                              ELSE %(heavy)s + (r.k - %(owned_rows)s) %% %(light)s END AS person,
                         -- The models in turn, but the last: the rare one, in 0.5 %% of the rows.
                         CASE WHEN cardinality(%(model_ids)s::text[]) > 1
                                   AND ((r.h2 >> 8) & 2147483647) %% 200 = 0
                              THEN cardinality(%(model_ids)s::text[])
                              ELSE 1 + (r.n %% greatest(cardinality(%(model_ids)s::text[]) - 1, 1))::int
                         END AS m
                  FROM (
                    SELECT n, (n * %(mul)s + %(add)s) %% %(total)s AS k,
                           hashint8extended(n, %(seed)s) AS h1, hashint8extended(n, %(seed)s + 1) AS h2
                    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS n
                    OFFSET 0
                  ) AS r
                  OFFSET 0
                ) AS w
                OFFSET 0
              ) AS a
              OFFSET 0
            ) AS b
        """
        for lo, hi in self.chunks(total):
            self.begin()
            # A year of history is not news: no status event (and NOTIFY) per loaded row
            # (generations 0019), switched on again before the chunk commits.
            self.conn.execute("ALTER TABLE public.generations DISABLE TRIGGER status_events_insert")
            self.conn.execute(statement, {**params, "lo": lo, "hi": hi})
            # The deferred foreign-key checks of the rows, now rather than at the commit:
            # ALTER TABLE refuses a table with trigger events still pending.
            self.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self.conn.execute("ALTER TABLE public.generations ENABLE TRIGGER status_events_insert")
            self.conn.commit()
            self.say("generations", hi, total)

    def ledger(self) -> None:
        """The heavy people's and the whale's credit ledgers: one row per generation of
        theirs, in time order — a purchase every tenth (enough for the nine that follow at
        the dearest model's cost), a staff grant every fiftieth (a full admin page of them
        on the small set), otherwise the usage of that generation (its model's cost,
        linked to it, as ``generation_create`` writes it) — with balance_after the running
        sum after the sign-up bonus and the balance set to the total, so the invariant
        holds (balance = sum of the ledger = the newest row's balance_after). Every
        person's sign-up bonus is first dated back to their sign-up (``credits_apply``
        stamps it with the load's clock, after the year of history): the append-only
        guard is switched off for that one UPDATE, inside its transaction. One statement
        per person."""
        spec = self.spec
        self.begin()
        self.conn.execute("ALTER TABLE public.credit_transactions DISABLE TRIGGER append_only")
        self.conn.execute(
            "UPDATE public.credit_transactions AS t SET created_at = u.created_at FROM auth.users AS u"
            " WHERE u.id = t.user_id AND t.type = 'signup_bonus' AND u.email LIKE %s",
            [f"%@{EMAIL_DOMAIN}"],
        )
        self.conn.execute("ALTER TABLE public.credit_transactions ENABLE TRIGGER append_only")
        self.conn.commit()
        if not spec.ledger:
            return
        owners = list(range(spec.heavy_users)) + ([self.whale] if spec.whale else [])
        purchase = 9 * max(self.model_costs)
        statement = f"""
            WITH person AS (SELECT {_person_uuid("%(person)s::bigint")} AS id),
            g AS (
              SELECT g.id, g.created_at, g.credits_charged, m.display_name,
                     row_number() OVER (ORDER BY g.created_at, g.id) - 1 AS r
              FROM public.generations AS g JOIN public.ai_models AS m ON m.id = g.ai_model_id
              WHERE g.user_id = (SELECT id FROM person)
            ),
            e AS (
              SELECT g.r,
                     CASE WHEN g.r %% 10 = 0 THEN 'purchase' WHEN g.r %% 50 = 25 THEN 'grant'
                          ELSE 'usage' END AS type,
                     CASE WHEN g.r %% 10 = 0 THEN %(purchase)s WHEN g.r %% 50 = 25 THEN 500
                          ELSE -g.credits_charged END AS amount,
                     CASE WHEN g.r %% 10 = 0 OR g.r %% 50 = 25 THEN NULL ELSE g.id END AS generation_id,
                     CASE WHEN g.r %% 10 = 0 THEN 'Credit pack (benchmark)'
                          WHEN g.r %% 50 = 25 THEN 'Goodwill grant (benchmark)'
                          ELSE 'Generation with ' || g.display_name END AS description,
                     CASE WHEN g.r %% 10 = 0 THEN g.created_at - interval '1 millisecond'
                          ELSE g.created_at END AS created_at
              FROM g
            ),
            ins AS (
              INSERT INTO public.credit_transactions (
                user_id, type, amount, balance_after, generation_id, description, created_by_id, created_at)
              SELECT (SELECT id FROM person), e.type, e.amount,
                     100 + sum(e.amount) OVER (ORDER BY e.created_at, e.r),
                     e.generation_id, e.description,
                     CASE WHEN e.type = 'usage' THEN (SELECT id FROM person) END, e.created_at
              FROM e
              ORDER BY e.created_at, e.r
              RETURNING amount
            )
            UPDATE public.users SET credits_balance = credits_balance + (SELECT coalesce(sum(amount), 0) FROM ins)
            WHERE id = (SELECT id FROM person)
        """
        done = 0
        total = spec.heavy_users * spec.per_heavy + spec.whale
        for person in owners:
            self.begin()
            self.conn.execute(statement, {"person": person, "purchase": purchase})
            self.conn.commit()
            done += spec.whale if person == self.whale else spec.per_heavy
            if person == owners[-1] or done % CHUNK < spec.per_heavy:
                self.say("ledger", done, total)

    def stacks(self) -> None:
        spec = self.spec
        public = spec.public_stacks
        private = round(public * PRIVATE_STACKS_RATIO)
        total = public + private
        if not total:
            return
        words = len(STYLE_WORDS)
        span_us = int(SPAN.total_seconds() * 1_000_000)
        params = {
            "total": total,
            "private": private,
            "users": spec.users,
            "seed": _SEED + 100,
            "start": self.start,
            "end": self.end,
            "step_us": span_us // total,
            "rest_us": span_us % total,
            "words": list(STYLE_WORDS),
            # Steps coprime with the vocabulary size: the words a + j·step (j = 0 … 5) differ.
            "steps": [b for b in range(7, words) if math.gcd(b, words) == 1][:64],
            "nouns": list(_NAME_NOUNS),
            "templates": list(_DESCRIPTION_TEMPLATES),
            "categories": list(_STACK_CATEGORIES),
            "lighting": list(_LIGHTING),
            "models": self.model_ids + self.model_ids,  # doubled: a slice of up to 3 never wraps
            "model_count": len(self.model_ids),
        }
        # Fenced layers as for generations: r: hashes; x: the vocabulary walk (start a, step b); s: the
        # stack's six words (w0 … w5), creation time and usage. s.n is the creation order.
        statement = f"""
            INSERT INTO public.style_stacks (
              id, user_id, name, description, tags, category, visibility, is_featured, is_marketplace,
              price_credits, style, compatible_models, version, created_from, usage_count, fork_count,
              last_used_at, created_at, updated_at)
            SELECT {_uuid("'velro-bench:stack:' || s.n::text")}, {_person_uuid("s.u2 %% %(users)s")},
                   initcap(s.w0) || ' ' || initcap(s.w1) || ' '
                     || (%(nouns)s::text[])[1 + s.u3 %% cardinality(%(nouns)s::text[])],
                   replace(replace(replace((%(templates)s::text[])[1 + s.u4 %% cardinality(%(templates)s::text[])],
                                           '{{A}}', initcap(s.w4)), '{{a}}', s.w4), '{{b}}', s.w5),
                   CASE WHEN s.u3 %% 2 = 0 THEN ARRAY[s.w1, s.w2, s.w3, s.w0] ELSE ARRAY[s.w1, s.w2, s.w3] END,
                   (%(categories)s::text[])[1 + s.u4 %% cardinality(%(categories)s::text[])],
                   CASE WHEN (s.n + 1) * %(private)s / %(total)s > s.n * %(private)s / %(total)s
                        THEN 'private' ELSE 'public' END,
                   s.u4 / 7 %% 100 = 0, false, 0,
                   jsonb_build_object(
                     'schema_version', 2,
                     'base_json', jsonb_build_object('genre', s.w0, 'palette', jsonb_build_array(s.w1, s.w2),
                                                     'era', s.w3),
                     'prompt_blocks', jsonb_build_object(
                       'style', jsonb_build_object(
                         'text', s.w0 || ' ' || s.w1 || ' style, ' || s.w2 || ' details, ' || s.w3 || ' palette',
                         'weight', round((8 + s.u1 %% 8) / 10.0, 1), 'enabled', true),
                       'lighting', jsonb_build_object(
                         'text', (%(lighting)s::text[])[1 + s.u3 %% cardinality(%(lighting)s::text[])],
                         'weight', 1, 'enabled', true),
                       'keywords', jsonb_build_object(
                         'items', jsonb_build_array(s.w0, s.w1, s.w2, s.w3), 'weight', 1, 'enabled', s.u1 %% 9 > 0),
                       'negative', jsonb_build_object(
                         'text', 'blurry, low resolution, watermark', 'weight', 1, 'enabled', true)),
                     'model_adaptations', jsonb_build_object(
                       'video', jsonb_build_object('parameters', jsonb_build_object('aspect_ratio', '16:9')))),
                   (%(models)s::text[])[1 + s.u1 %% %(model_count)s : 1 + s.u1 %% %(model_count)s + s.u2 %% 3],
                   1, 'manual', s.usage_count, s.usage_count / (3 + s.u3 %% 20),
                   CASE WHEN s.usage_count > 0
                        THEN s.created_at + (%(end)s::timestamptz - s.created_at) * ((1 + s.u2 %% 999) / 1000.0) END,
                   s.created_at, s.created_at
            FROM (
              SELECT x.*,
                     (%(words)s::text[])[1 + x.a] AS w0,
                     (%(words)s::text[])[1 + (x.a + x.b) %% cardinality(%(words)s::text[])] AS w1,
                     (%(words)s::text[])[1 + (x.a + 2 * x.b) %% cardinality(%(words)s::text[])] AS w2,
                     (%(words)s::text[])[1 + (x.a + 3 * x.b) %% cardinality(%(words)s::text[])] AS w3,
                     (%(words)s::text[])[1 + (x.a + 4 * x.b) %% cardinality(%(words)s::text[])] AS w4,
                     (%(words)s::text[])[1 + (x.a + 5 * x.b) %% cardinality(%(words)s::text[])] AS w5,
                     %(start)s::timestamptz
                       + (x.n * %(step_us)s + x.n * %(rest_us)s / %(total)s + x.u3 %% greatest(%(step_us)s, 1))
                         * interval '1 microsecond' AS created_at,
                     -- Skewed: half the stacks used at most 11 times, one in ten over 3,000.
                     floor(exp(((x.u4 %% 10000) / 10000.0::float8) ^ 2 * ln(20000.0::float8)))::int - 1 AS usage_count
              FROM (
                SELECT r.n, r.h1 & 2147483647 AS u1, (r.h1 >> 32) & 2147483647 AS u2,
                       r.h2 & 2147483647 AS u3, (r.h2 >> 32) & 2147483647 AS u4,
                       (r.h1 & 2147483647) %% cardinality(%(words)s::text[]) AS a,
                       (%(steps)s::int[])[1 + ((r.h1 >> 32) & 2147483647) %% cardinality(%(steps)s::int[])] AS b
                FROM (
                  SELECT n, hashint8extended(n, %(seed)s) AS h1, hashint8extended(n, %(seed)s + 1) AS h2
                  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS n
                  OFFSET 0
                ) AS r
                OFFSET 0
              ) AS x
              OFFSET 0
            ) AS s
        """
        for lo, hi in self.chunks(total):
            self.begin()
            self.conn.execute("ALTER TABLE public.style_stacks DISABLE TRIGGER server_columns")
            self.conn.execute(statement, {**params, "lo": lo, "hi": hi})
            self.conn.execute("ALTER TABLE public.style_stacks ENABLE TRIGGER server_columns")
            self.conn.commit()
            self.say("style stacks", hi, total)

    def verify(self) -> None:
        """Cheap checks of what the triggers kept: project counts and the credit books."""
        wrong_projects = self.conn.execute(
            "SELECT count(*) FROM public.projects AS p WHERE p.generation_count"
            " <> (SELECT count(*) FROM public.generations AS g WHERE g.project_id = p.id)"
        ).fetchone()[0]
        wrong_books = self.conn.execute(
            "SELECT count(*) FROM public.users AS u WHERE u.credits_balance"
            " <> (SELECT coalesce(sum(t.amount), 0) FROM public.credit_transactions AS t WHERE t.user_id = u.id)"
            " OR u.credits_balance IS DISTINCT FROM (SELECT t.balance_after FROM public.credit_transactions AS t"
            "   WHERE t.user_id = u.id ORDER BY t.created_at DESC, t.id DESC LIMIT 1)"
        ).fetchone()[0]
        self.conn.rollback()
        if wrong_projects or wrong_books:
            raise RuntimeError(
                f"benchmark data inconsistent: {wrong_projects} project counts, {wrong_books} balances wrong"
            )

    def vacuum(self) -> None:
        conn = self.conn
        conn.commit()
        autocommit = conn.autocommit
        conn.autocommit = True
        try:
            for table in (
                "auth.users",
                "auth.sessions",
                "public.users",
                "public.credit_transactions",
                "public.projects",
                "public.generations",
                "public.style_stacks",
            ):
                conn.execute(f"VACUUM (ANALYZE) {table}")
        finally:
            conn.autocommit = autocommit
        self.progress(f"vacuum analyze done  ({time.monotonic() - self.started:.1f} s)")

    def mark(self) -> None:
        name = self.conn.execute("SELECT current_database()").fetchone()[0]
        self.conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(signature(self.spec)))
        )
        self.conn.commit()


def load(conn: psycopg.Connection, spec: DatasetSpec, progress: Callable[[str], object] = print) -> None:
    """Fill the empty, migrated database behind ``conn`` (the owner, autocommit off) with
    ``spec``'s data, committing chunk by chunk, and set the marker last."""
    _check(spec)
    autocommit = conn.autocommit
    if autocommit:
        conn.autocommit = False  # chunks are transactions (trigger switches must not outlive one)
    try:
        loader = _Loader(conn, spec, progress)
        loader.prepare()
        loader.users()
        loader.sessions()
        loader.projects()
        loader.generations()
        loader.ledger()
        loader.stacks()
        loader.verify()
        loader.vacuum()
        loader.mark()
    finally:
        if autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = True
