"""Every stdlib module the README promises imports and works in the sandbox."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

# Each: a module and a one-line use of it that returns a truthy value.
PROMISED = {
    "json": "json.loads(json.dumps({'a': [1]}))['a'] == [1]",
    "re": "re.sub(r'\\d+', '#', 'a1b22') == 'a#b#'",
    "datetime": "datetime.date(2024, 2, 29).isoformat() == '2024-02-29'",
    "collections": "collections.Counter('aab')['a'] == 2",
    "itertools": "list(itertools.islice(itertools.count(), 3)) == [0, 1, 2]",
    "functools": "functools.reduce(lambda a, b: a + b, [1, 2, 3]) == 6",
    "statistics": "statistics.median([3, 1, 2]) == 2",
    "math": "math.isclose(math.sqrt(2) ** 2, 2)",
    "decimal": "str(decimal.Decimal('0.1') + decimal.Decimal('0.2')) == '0.3'",
    "fractions": "fractions.Fraction(1, 3) * 3 == 1",
    "csv": "list(csv.reader(io.StringIO('a,b\\n1,2'))) == [['a', 'b'], ['1', '2']]",
    "io": "io.StringIO('x').read() == 'x'",
    "base64": "base64.b64decode(base64.b64encode(b'hi')) == b'hi'",
    "hashlib": "len(hashlib.sha256(b'x').hexdigest()) == 64",
    "hmac": "len(hmac.new(b'k', b'm', 'sha256').hexdigest()) == 64",
    "uuid": "uuid.uuid4().version == 4",
    "textwrap": "textwrap.shorten('hello world foo', 11) == 'hello [...]'",
    "string": "string.ascii_lowercase[0] == 'a'",
    "difflib": "difflib.SequenceMatcher(None, 'abc', 'abd').ratio() > 0.5",
    "heapq": "heapq.nsmallest(2, [5, 1, 3]) == [1, 3]",
    "bisect": "bisect.bisect([1, 3, 5], 4) == 2",
    "random": "0 <= random.random() < 1",
    "operator": "operator.itemgetter(1)([0, 9]) == 9",
    "dataclasses": "dataclasses.is_dataclass(dataclasses.make_dataclass('P', ['x']))",
    "typing": "typing.get_origin(typing.List[int]) is list",
    "enum": "enum.Enum('C', 'RED').RED.value == 1",
    "html": "html.escape('<a>') == '&lt;a&gt;'",
    "urllib.parse": "urllib.parse.urlencode({'q': 'a b'}) == 'q=a+b'",
    "xml.etree.ElementTree": "xml.etree.ElementTree.fromstring('<a><b/></a>')[0].tag == 'b'",
    "pprint": "pprint.pformat({'a': 1}) == \"{'a': 1}\"",
    "copy": "copy.deepcopy([[1]]) == [[1]]",
    "struct": "struct.unpack('<I', struct.pack('<I', 7)) == (7,)",
    "zlib": "zlib.decompress(zlib.compress(b'abc')) == b'abc'",
    "gzip": "gzip.decompress(gzip.compress(b'abc')) == b'abc'",
    "calendar": "calendar.isleap(2024)",
    "time": "time.time() > 1.7e9",
    "asyncio": "asyncio.iscoroutinefunction(asyncio.sleep)",
    "array": "array.array('i', [1, 2]).tolist() == [1, 2]",
    "cmath": "cmath.sqrt(-1) == 1j",
    "graphlib": "list(graphlib.TopologicalSorter({'b': {'a'}}).static_order()) == ['a', 'b']",
    "ipaddress": "ipaddress.ip_address('10.0.0.1').is_private",
    "secrets": "len(secrets.token_hex(4)) == 8",
    "shlex": "shlex.split('a \"b c\"') == ['a', 'b c']",
    "unicodedata": "unicodedata.name('a') == 'LATIN SMALL LETTER A'",
    "fnmatch": "fnmatch.fnmatch('a.py', '*.py')",
    "contextlib": "contextlib.suppress(KeyError) is not None",
    "abc": "abc.ABC is not None",
    "numbers": "isinstance(1, numbers.Number)",
    "keyword": "keyword.iskeyword('for')",
    "colorsys": "colorsys.rgb_to_hsv(1, 0, 0)[0] == 0",
    "codecs": "codecs.encode('abc', 'rot13') == 'nop' and 'é'.encode('latin-1') == b'\\xe9'",
    "pathlib": "pathlib.PurePosixPath('a/b.txt').suffix == '.txt'",
    "binascii": "binascii.hexlify(b'a') == b'61'",
    "html.parser": "html.parser.HTMLParser() is not None",
    "xml.dom.minidom": "xml.dom.minidom.parseString('<a/>').documentElement.tagName == 'a'",
    "inspect": "inspect.isfunction(lambda: 0)",
    "zoneinfo": "str(__import__('datetime').datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("
    "'Asia/Tokyo')).utcoffset()) == '9:00:00'",
    "email": "email.message_from_string('Subject: hi\\n\\nbody')['Subject'] == 'hi'",
    "email.utils": "email.utils.parseaddr('Ada <ada@example.com>') == ('Ada', 'ada@example.com')",
    "email.message": "email.message.EmailMessage() is not None",
    "email.parser": "email.parser.Parser().parsestr('A: b\\n\\n')['A'] == 'b'",
    "email.policy": "email.policy.default is not None",
    "email.header": "str(email.header.make_header(email.header.decode_header('x'))) == 'x'",
    "email.mime.text": "email.mime.text.MIMEText('hi')['Content-Type'].startswith('text/plain')",
    "email.mime.multipart": "email.mime.multipart.MIMEMultipart().is_multipart()",
    "tomllib": "tomllib.loads('a = 1')['a'] == 1",
    "configparser": "configparser.ConfigParser() is not None",
    "zipfile": "zipfile.ZipFile(io.BytesIO(), 'w') is not None",
    "pickle": "pickle.loads(pickle.dumps({'a': 1})) == {'a': 1}",
    "mimetypes": "mimetypes.guess_type('a.json')[0] == 'application/json'",
    "http": "http.HTTPStatus(404).phrase == 'Not Found'",
    "quopri": "quopri.decodestring(b'a=3Db') == b'a=b'",
    "logging": "logging.getLogger('x') is not None",
    "warnings": "warnings.warn is not None",
    "types": "types.SimpleNamespace(a=1).a == 1",
    "weakref": "weakref.ref is not None",
    "traceback": "traceback.format_exc is not None",
    "linecache": "linecache.getline is not None",
    "html.entities": "html.entities.name2codepoint['amp'] == 38",
    "ast": "ast.literal_eval('[1, 2]') == [1, 2]",
    "collections.abc": "issubclass(list, collections.abc.Sequence)",
    "os": "os.path.join('a', 'b') == 'a/b'",
    "sys": "sys.version_info >= (3, 14)",
    "xml.dom.expatbuilder": "xml.dom.expatbuilder is not None",
    "_strptime": "__import__('time').strptime('2024-07-01', '%Y-%m-%d').tm_mon == 7",
    "argparse": "argparse.ArgumentParser().parse_args([]) is not None",
    "gettext": "gettext.gettext('x') == 'x'",
}

OFFERED = runpy.run_path(
    str(Path(__file__).parents[1] / "codemode/wasm_runtime/guest/_cm_stdlib.py")
)["OFFERED"]


def test_every_offered_module_is_promised_and_tested():
    untested = [m for m in OFFERED if m not in PROMISED and not m.startswith("encodings.")]
    assert not untested


@pytest.mark.parametrize("module", sorted(PROMISED))
async def test_promised_module_imports_and_works(run, module):
    code = f"import io, {module}\n{PROMISED[module]}"
    r = await run(code)
    assert r.ok and r.result is True, (module, r.error)
