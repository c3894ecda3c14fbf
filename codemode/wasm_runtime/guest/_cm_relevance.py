"""Which configured tools look relevant: for hints and for the messages of missing modules
("the sandbox has no network ... (tools that look relevant here: time.get_current_time)")."""

from _cm_api import Registry

_COMMON_WORDS = frozenset(
    "get set list all new add the and for with from into this that http https www com org "
    "net api json data result results response request value values item items return "
    "await async import def class true false none self print text str int float dict "
    "lambda yield else elif while try except finally raise assert pass break continue "
    "global nonlocal timeout status code".split()
)


def _words(text: str) -> set[str]:
    spaced = "".join(c if c.isalnum() else " " for c in text)
    out = set()
    for word in spaced.split():
        for part in _split_case(word):
            if len(part) >= 3 and not part.isdigit() and part not in _COMMON_WORDS:
                out.add(part)
    return out


def _split_case(word: str) -> list[str]:
    parts, current = [], ""
    for c in word:
        if c.isupper() and current and not current[-1].isupper():
            parts.append(current)
            current = ""
        current += c
    parts.append(current)
    return [p.lower() for p in parts] + [word.lower()]


def relevant_to_program(limit: int = 3) -> list[str]:
    """Tools whose names and first doc lines share words with the program (what it was
    trying to reach: `git log` -> git.git_log, a time API URL -> time.get_current_time)."""
    program = _words(Registry.code)
    if not program:
        return []
    scored = []
    for fn in Registry.functions:
        if fn.alias or "." not in fn.path:
            continue
        name = _words(fn.path.rsplit(".", 1)[-1]) | _words(fn.path.split(".", 1)[0])
        doc = _words(fn.doc.strip().split("\n", 1)[0]) - name
        score = 0
        for word in name:
            score += 2 if word in program else any(word in p for p in program if len(word) >= 4)
        score += sum(1 for word in doc if word in program)
        if score >= 2:
            scored.append((-score, fn.path))
    return [p for _, p in sorted(scored)[:limit]]


def relevant_tools(*words: str, limit: int = 4) -> list[str]:
    """Paths of tools whose names mention any of `words` (earlier words weigh more), best
    first; deprecated tools last."""
    scored = []
    for fn in Registry.functions:
        if fn.alias:
            continue
        name = fn.path.rsplit(".", 1)[-1].lower()
        score = sum(2 ** (len(words) - i) for i, w in enumerate(words) if w in name)
        if score:
            deprecated = "deprecated" in fn.doc.lower()
            scored.append((deprecated, -score, fn.path))
    return [p for *_, p in sorted(scored)[:limit]]


def tools_that_may_help(*words: str) -> str:
    """ " (tools that look relevant here: a, b)" from the program's words and `words`."""
    found = relevant_to_program()
    for path in relevant_tools(*words) if words else ():
        if path not in found and len(found) < 4:
            found.append(path)
    return f" (tools that look relevant here: {', '.join(found)})" if found else ""
