"""The standard library offered to programs, and what to say about every other module.

componentize-py snapshots the guest after its top level ran at build time, and mounts no
stdlib at run time: the modules imported at build time are all a program can import.
`OFFERED` is that list; `sandbox_guest` imports each one. The host reads this file too
(`codemode.wasm_runtime.sandbox_modules`), so the catalog and the naming rules know which
names are stdlib modules. Each entry is tested (tests/test_sandbox_stdlib.py).
"""

OFFERED = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "binascii", "bisect", "calendar",
    "cmath", "codecs", "collections", "collections.abc", "colorsys", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email",
    "email.header", "email.message", "email.mime.multipart", "email.mime.text", "email.parser",
    "email.policy", "email.utils", "encodings.ascii", "encodings.base64_codec",
    "encodings.cp1252", "encodings.hex_codec", "encodings.idna", "encodings.latin_1",
    "encodings.rot_13", "encodings.utf_16", "encodings.utf_32", "encodings.utf_8_sig", "enum",
    "fnmatch", "fractions", "functools", "gettext", "graphlib", "gzip", "hashlib", "heapq",
    "hmac", "html", "html.entities", "html.parser", "http", "inspect", "io", "ipaddress",
    "itertools", "json", "keyword", "linecache", "logging", "math", "mimetypes", "numbers",
    "operator", "os", "pathlib", "pickle", "pprint", "quopri", "random", "re", "secrets",
    "shlex", "statistics", "string", "_strptime", "struct", "sys", "textwrap", "time",
    "tomllib", "traceback", "types", "typing", "unicodedata", "urllib.parse", "uuid",
    "warnings", "weakref", "xml.dom.expatbuilder", "xml.dom.minidom", "xml.etree.ElementTree",
    "zipfile", "zlib", "zoneinfo",
)  # fmt: skip

NO_NETWORK = (
    "the sandbox has no network access, so no HTTP client can work here. The tools are the "
    "way out: call a configured tool that fetches what you need"
)
NO_FILES = (
    "the sandbox has no host file system. Read and write files through a configured "
    "filesystem tool instead"
)
NO_PROCESSES = (
    "the sandbox cannot start processes or threads. Run work concurrently with "
    "`asyncio.gather(...)`, and reach programs through the tools"
)
NO_PACKAGES = "the sandbox has the standard library only (no pip packages)"

# module -> why it is absent and what to use instead (one sentence each).
ABSENT = {
    **dict.fromkeys(
        ("requests", "httpx", "aiohttp", "urllib3", "urllib.request", "http.client",
         "http.server", "websockets", "websocket", "ftplib", "smtplib", "imaplib", "poplib",
         "telnetlib", "xmlrpc", "socketserver", "ssl", "openai", "anthropic", "boto3",
         "botocore", "googleapiclient", "google", "selenium", "playwright", "grpc"),
        NO_NETWORK,
    ),
    **dict.fromkeys(
        ("sqlite3", "dbm", "shelve", "tempfile", "shutil", "filecmp", "fileinput"),
        NO_FILES,
    ),
    **dict.fromkeys(
        ("multiprocessing", "concurrent", "concurrent.futures", "_thread", "sched", "pty",
         "pexpect", "sh", "psutil"),
        NO_PROCESSES,
    ),
    "queue": "queue needs threads, which the sandbox has not: use asyncio.Queue (with tasks) "
    "or collections.deque instead",
    "ctypes": "the sandbox cannot load native code",
    "cffi": "the sandbox cannot load native code",
    "pandas": f"{NO_PACKAGES}: use csv, statistics, collections and itertools instead",
    "polars": f"{NO_PACKAGES}: use csv, statistics, collections and itertools instead",
    "numpy": f"{NO_PACKAGES}: use math, statistics and plain lists instead",
    "scipy": f"{NO_PACKAGES}: use math and statistics instead",
    "dateutil": f"{NO_PACKAGES}: use datetime (datetime.fromisoformat parses ISO 8601) and "
    "zoneinfo",
    "pytz": f"{NO_PACKAGES}: use zoneinfo.ZoneInfo('Europe/Paris') instead",
    "arrow": f"{NO_PACKAGES}: use datetime and zoneinfo instead",
    "pendulum": f"{NO_PACKAGES}: use datetime and zoneinfo instead",
    "yaml": f"{NO_PACKAGES}: there is no YAML parser; json and tomllib are available",
    "bs4": f"{NO_PACKAGES}: use html.parser or re instead",
    "lxml": f"{NO_PACKAGES}: use xml.etree.ElementTree instead",
    "pydantic": f"{NO_PACKAGES}: use dataclasses instead",
    "attrs": f"{NO_PACKAGES}: use dataclasses instead",
    "tabulate": f"{NO_PACKAGES}: format with f-strings or str.ljust instead",
    "tqdm": f"{NO_PACKAGES}: there is no progress bar; print counts instead",
    "rich": f"{NO_PACKAGES}: use print instead",
    "jsonschema": f"{NO_PACKAGES}: tool arguments are checked against their schemas already",
    "regex": f"{NO_PACKAGES}: use re instead",
    "simplejson": f"{NO_PACKAGES}: use json instead",
    "orjson": f"{NO_PACKAGES}: use json instead",
    "ujson": f"{NO_PACKAGES}: use json instead",
    "mcp": "there is no MCP client in the sandbox: the tools are already async functions "
    "(`await ns.tool(...)`), their results come back parsed, and a failed call raises "
    "ToolError, which is predefined",
    "fastmcp": "there is no MCP client in the sandbox: call the tools directly "
    "(`await ns.tool(...)`); a failed call raises ToolError, which is predefined",
    "pydoc": "there is no pydoc here: help(x) prints x's documentation, and "
    "tools.describe('ns.tool') a tool's",
    "nest_asyncio": "the program already runs in an event loop: `await` coroutines directly",
    "bz2": "bz2 is not built into the sandbox's CPython: use zlib, gzip or zipfile instead",
    "lzma": "lzma is not built into the sandbox's CPython: use zlib, gzip or zipfile instead",
    "tarfile": "tarfile is not in the sandbox: use zipfile or gzip instead",
    "platform": "the sandbox is CPython compiled to WebAssembly; use sys.version for the "
    "Python version",
    "getpass": "there is no terminal and no user: pass values in the program instead",
    "unittest": "there is no test runner here: check with `assert` instead",
    "doctest": "there is no test runner here: check with `assert` instead",
    "pytest": "there is no test runner here: check with `assert` instead",
}  # fmt: skip

# Names a model uses for the tool API itself, as if it were a package or a client object.
TOOL_API_MODULES = frozenset(
    {"mcp", "mcp_tools", "tools", "functions", "default_api", "codemode", "tool_api", "api",
     "session", "client", "mcp_client", "server", "toolkit", "registry"}
)  # fmt: skip
