"""Saved views and the presentation sequence, stored in the runs root (plain Python, no streamlit).

A saved view is a named dashboard state: the page, the sidebar's experiment and
runs, the selected sample and the page's filter widgets. All views live in one
JSON file, ``<runs root>/.fusionlens/views.json``; the presentation (an ordered
list of view names) sits beside it in ``presentation.json``. The folder is
hidden, so the catalog never takes it for an experiment.

Both files are read with validation: names are plain names, pages known keys,
filters only the whitelisted widget keys of their page (:data:`FILTER_KEYS`),
each with a value of the kind its widget takes; a filter key outside the
whitelist is dropped on reading and never reaches the session state. A file that
fails validation is reported as :class:`ViewsDamaged` and is never overwritten:
saving refuses until the user removes it or moves it aside
(:meth:`ViewStore.move_aside`). Writes are atomic (:func:`core.io.write_json`)
and serialised by a lock file where the platform has ``fcntl``.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote

from core.catalog import PathRefused, check_name, is_inside
from core.errors import ConfigError, DataError, did_you_mean
from core.io import write_json

try:  # POSIX: two dashboard sessions saving at once do not lose each other's view
    import fcntl
except ImportError:  # pragma: no cover - Windows: atomic writes, last writer wins
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "VIEWS_DIR",
    "VIEWS_FILE",
    "PRESENTATION_FILE",
    "FORMAT_VERSION",
    "FILTER_KEYS",
    "SavedView",
    "ViewsDamaged",
    "ViewExists",
    "ViewStore",
    "check_view_name",
    "is_filter_key",
    "capture_filters",
    "view_link",
]

VIEWS_DIR = ".fusionlens"
VIEWS_FILE = "views.json"
PRESENTATION_FILE = "presentation.json"
FORMAT_VERSION = 1
#: The widget keys of each page that a saved view keeps, with the kind of value each widget takes
#: (``prefix*`` stands for keys made per option): ``text`` a string or None, ``texts`` a list of
#: strings, ``bool``, ``int`` / ``number`` a whole / finite number or None, ``range01`` a [low, high]
#: pair within 0-1. A bounded number input is not kept: its bounds change with the run.
#: A value of another kind would make the widget fail when the view is opened, so it is refused when
#: read and left out when saved.
FILTER_KEYS: dict[str, dict[str, str]] = {
    "compare": {"cmp_strategy": "texts", "cmp_fusion": "texts", "cmp_subset": "texts", "cmp_search": "text",
                "cmp_encoders": "texts", "cmp_metrics": "texts"},
    "contributions": {"contrib_classes": "texts", "contrib_subsets": "texts", "contrib_kind": "text",
                      "contrib_meaning": "text"},
    "explorer": {"ex_true": "texts", "ex_pred": "texts", "ex_correct": "text", "ex_conf": "range01",
                 "ex_search": "text", "ex_dominant": "texts"},
    "embeddings": {"emb_method": "text", "emb_color": "text", "emb_which": "texts", "emb_colored_*": "texts",
                   "emb_every_point": "bool"},
    "misclassifications": {"mis_norm": "bool", "mis_errors": "bool", "mis_true": "text", "mis_pred": "text",
                           "mis_classes_all": "bool", "mis_classes_find": "texts"},
    "robustness": {"rob_runs": "texts", "rob_mods": "texts", "rob_share_mod": "text"},
    "efficiency": {"eff_sample": "text"},
    "slices": {"sl_columns": "texts", "sl_conditions": "int", "sl_alpha": "number"},
}
_NAME = re.compile(r"^\w[\w .-]*$")
_MAX_NAME = 80
_MAX_TEXT = 500
_MAX_LIST = 1000
_MAX_FILE_BYTES = 5_000_000
_NAME_FIX = "use letters, digits, spaces, '-', '_' or '.' (up to 80 characters), starting with a letter or digit"


class ViewsDamaged(DataError):
    """The views or presentation file cannot be read; it is left as it is until the user deals with it."""

    def __init__(self, problem: str, fix: str | None = None, *, path: Path | None = None) -> None:
        super().__init__(problem, fix)
        self.path = path


class ViewExists(ConfigError):
    """A view of that name is saved already (saving again needs ``overwrite=True``)."""


def check_view_name(name: Any) -> str:
    """``name`` stripped if it is a plain view name; else a :class:`ConfigError` naming the rule."""
    if not isinstance(name, str):
        raise ConfigError(f"a view name is text, not {type(name).__name__}", fix=_NAME_FIX)
    if not name.strip():
        raise ConfigError("empty view name", fix="type a name for the view")
    name = name.strip()
    try:
        check_name(name, "view name")
    except PathRefused as exc:
        raise ConfigError(exc.problem, fix=_NAME_FIX) from None
    if len(name) > _MAX_NAME or not _NAME.match(name) or name.endswith("."):
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ConfigError(f"refused view name {shown!r}: not a plain name", fix=_NAME_FIX)
    return name


def _filter_kind(page: str, key: str) -> str | None:
    """The kind of value of widget ``key`` of ``page`` (see :data:`FILTER_KEYS`), None when views do not keep it."""
    for allowed, kind in FILTER_KEYS.get(page, {}).items():
        if allowed.endswith("*"):
            rest = key[len(allowed) - 1:]
            if key.startswith(allowed[:-1]) and rest and re.fullmatch(r"[A-Za-z0-9_]+", rest):
                return kind
        elif key == allowed:
            return kind
    return None


def is_filter_key(page: str, key: str) -> bool:
    """Whether ``key`` is a widget of ``page`` that saved views keep."""
    return _filter_kind(page, key) is not None


def _text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_TEXT


def _number(value: Any, *, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= 10**15
    return math.isfinite(value) and abs(value) <= 1e15 and (not whole or value.is_integer())


def _filter_value(kind: str, value: Any) -> Any:
    """``value`` as stored JSON (tuples become lists), or ValueError when it is not of ``kind``."""
    if kind == "text" and (value is None or _text(value)):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind in ("int", "number") and (value is None or _number(value, whole=kind == "int")):
        return int(value) if kind == "int" and value is not None else value
    if kind == "texts" and isinstance(value, (list, tuple)) and len(value) <= _MAX_LIST and all(map(_text, value)):
        return list(value)
    if (kind == "range01" and isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and 0.0 <= value[0] <= value[1] <= 1.0):
        return [float(v) for v in value]
    wanted = {"text": "a text", "bool": "true or false", "texts": "a list of texts", "int": "a whole number",
              "number": "a number",
              "range01": "a pair [low, high] within 0-1"}[kind]
    raise ValueError(f"{str(value)[:40]!r} is not {wanted}")


def capture_filters(page: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The whitelisted widget values of ``page`` in ``state`` (a session state), as plain JSON.

    Values that are not plain (a date, a dataframe selection) are left out.
    """
    out: dict[str, Any] = {}
    for key in sorted(str(k) for k in state.keys()):
        kind = _filter_kind(page, key)
        if kind is None:
            continue
        try:
            out[key] = _filter_value(kind, state[key])
        except (ValueError, KeyError):
            continue
    return out


def view_link(name: str, base_url: str | None = None) -> str:
    """The shareable link of a saved view: ``<base>?view=<name>`` (relative without a base)."""
    base = (base_url or "").split("?")[0]
    return f"{base}?view={quote(name, safe='')}"


@dataclass(frozen=True)
class SavedView:
    """One saved dashboard state (see the module docstring)."""

    name: str
    page: str
    exp: str | None = None
    run: str | None = None
    run2: str | None = None
    sample: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def query_params(self) -> dict[str, str]:
        """The view's URL state (``?page=&exp=&run=&run2=&sample=``); filters are not in the URL."""
        values = {"page": self.page, "exp": self.exp, "run": self.run, "run2": self.run2, "sample": self.sample}
        return {k: str(v) for k, v in values.items() if v}

    def widget_values(self) -> dict[str, Any]:
        """The filters as the widgets take them (a range slider's pair as a tuple, as it returns it)."""
        return {k: tuple(v) if _filter_kind(self.page, k) == "range01" else v for k, v in self.filters.items()}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "page": self.page, "exp": self.exp, "run": self.run, "run2": self.run2,
                "sample": self.sample, "filters": dict(self.filters), "created_at": self.created_at}

    @classmethod
    def create(cls, name: str, page: str, *, pages: Iterable[str], exp: str | None = None, run: str | None = None,
               run2: str | None = None, sample: str | None = None, filters: Mapping[str, Any] | None = None,
               ) -> "SavedView":
        """A new view, checked like a stored one, stamped with the current UTC time."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        raw = {"name": name, "page": page, "exp": exp, "run": run, "run2": run2, "sample": sample,
               "filters": dict(filters or {}), "created_at": stamp}
        try:
            return _parse_view(raw, frozenset(pages))
        except ValueError as exc:
            raise ConfigError(f"the view cannot be saved: {exc}",
                              fix="pick another name, and the experiment and runs in the sidebar") from None


def _plain_text(value: Any, what: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise ValueError(f"{what} {str(value)[:60]!r} is not a plain text of at most {limit} characters")
    return value


def _parse_view(raw: Any, pages: frozenset[str]) -> SavedView:
    """A :class:`SavedView` from its JSON object; ValueError naming the first problem."""
    if not isinstance(raw, dict):
        raise ValueError("a view is not a JSON object")
    try:
        name = check_view_name(raw.get("name"))
    except ConfigError as exc:
        raise ValueError(f"view name: {exc.problem}") from None
    page = raw.get("page")
    if page not in pages:
        raise ValueError(f"view {name!r} names the unknown page {str(page)[:40]!r} (known: {', '.join(sorted(pages))})")
    names = {}
    for key, what in (("exp", "experiment"), ("run", "run"), ("run2", "run")):
        value = raw.get(key)
        if value is not None:
            try:
                check_name(value, what)
            except PathRefused as exc:
                raise ValueError(f"view {name!r}: {exc.problem}") from None
        names[key] = value
    sample = _plain_text(raw.get("sample"), f"view {name!r}: sample")
    created = _plain_text(raw.get("created_at"), f"view {name!r}: created_at", 40) or ""
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict):
        raise ValueError(f"view {name!r}: filters is not a JSON object")
    kept: dict[str, Any] = {}
    for key, value in filters.items():
        kind = _filter_kind(page, key) if isinstance(key, str) else None
        if kind is None:
            continue  # not a widget of this page that views keep: never written to the session state
        try:
            kept[key] = _filter_value(kind, value)
        except ValueError as exc:
            raise ValueError(f"view {name!r}: filter {key!r}: {exc}") from None
    return SavedView(name=name, page=page, exp=names["exp"], run=names["run"], run2=names["run2"], sample=sample,
                     filters=kept, created_at=created)


class ViewStore:
    """The saved views and the presentation of one runs root.

    ``pages`` are the page keys a view may name (``ui.context.PAGE_BY_KEY``).
    """

    def __init__(self, root: str | Path, pages: Iterable[str]) -> None:
        self.root = Path(root)
        self.pages = frozenset(pages)
        self.folder = self.root / VIEWS_DIR
        self.path = self.folder / VIEWS_FILE
        self.presentation_path = self.folder / PRESENTATION_FILE

    # ----------------------------------------------------------------- reading

    def _check_folder(self) -> None:
        """Refuse a views folder that is a link (it could lead outside the runs directory)."""
        if self.folder.is_symlink() or (self.folder.exists() and not is_inside(self.folder, self.root)):
            raise ViewsDamaged(f"{self.folder} is a link; saved views are kept only inside the runs directory",
                               fix=f"replace the link {self.folder} with a folder", path=self.folder)

    def _read(self, path: Path, what: str) -> Any:
        """The JSON in ``path`` (None when absent), or :class:`ViewsDamaged`."""
        fix = (f"move it aside (the sidebar's \"Move the damaged file aside\" button) or rename or delete {path}; "
               f"the {what} are then empty")
        self._check_folder()
        if not path.exists() and not path.is_symlink():
            return None
        if path.is_symlink() or not path.is_file():
            raise ViewsDamaged(f"the {what} file {path} is not a plain file", fix=fix, path=path)
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                raise ViewsDamaged(f"the {what} file {path} is larger than {_MAX_FILE_BYTES // 1_000_000} MB",
                                   fix=fix, path=path)
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ViewsDamaged(f"the {what} file {path} is not valid JSON ({exc})", fix=fix, path=path) from None
        except OSError as exc:
            raise ViewsDamaged(f"the {what} file {path} cannot be read ({exc.strerror or exc})", fix=fix,
                               path=path) from None

    def _damaged(self, path: Path, what: str, problem: str) -> ViewsDamaged:
        return ViewsDamaged(f"the {what} file {path} is damaged: {problem}",
                            fix=f"move it aside (the sidebar's \"Move the damaged file aside\" button) or rename "
                                f"or delete {path}; the {what} are then empty", path=path)

    def load(self) -> dict[str, SavedView]:
        """Every saved view by name, in saving order; ``{}`` when none was saved."""
        data = self._read(self.path, "saved views")
        if data is None:
            return {}
        if not isinstance(data, dict) or not isinstance(data.get("views"), list):
            raise self._damaged(self.path, "saved views", "expected an object with a list \"views\"")
        if data.get("format") != FORMAT_VERSION:
            raise self._damaged(self.path, "saved views", f"format {data.get('format')!r}, this FusionLens reads "
                                                          f"format {FORMAT_VERSION}")
        views: dict[str, SavedView] = {}
        for raw in data["views"]:
            try:
                view = _parse_view(raw, self.pages)
            except ValueError as exc:
                raise self._damaged(self.path, "saved views", str(exc)) from None
            if view.name in views:
                raise self._damaged(self.path, "saved views", f"the name {view.name!r} appears twice")
            views[view.name] = view
        return views

    def get(self, name: str) -> SavedView:
        """The view ``name``; a :class:`ConfigError` for a name that is not plain or not saved."""
        name = check_view_name(name)
        views = self.load()
        if name not in views:
            raise ConfigError(f"no saved view is called {name!r}",
                              fix=did_you_mean(name, views) + "open the sidebar's \"Saved views\" to see them"
                              if views else "save a view first (sidebar, \"Saved views\")")
        return views[name]

    def presentation(self) -> list[str]:
        """The names of the presentation's views, in order (a name may no longer be saved)."""
        data = self._read(self.presentation_path, "presentation")
        if data is None:
            return []
        what = "presentation"
        if not isinstance(data, dict) or not isinstance(data.get("views"), list):
            raise self._damaged(self.presentation_path, what, "expected an object with a list \"views\"")
        if data.get("format") != FORMAT_VERSION:
            raise self._damaged(self.presentation_path, what, f"format {data.get('format')!r}")
        out: list[str] = []
        for name in data["views"]:
            try:
                out.append(check_view_name(name))
            except ConfigError as exc:
                raise self._damaged(self.presentation_path, what, exc.problem) from None
        return out

    # ----------------------------------------------------------------- writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._check_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            yield
            return
        with open(self.folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_views(self, views: Mapping[str, SavedView]) -> None:
        write_json(self.path, {"format": FORMAT_VERSION, "views": [v.to_json() for v in views.values()]})

    def save(self, view: SavedView, *, overwrite: bool = False) -> None:
        """Store ``view``; :class:`ViewExists` when the name is taken and ``overwrite`` is false.

        A damaged file raises :class:`ViewsDamaged` and stays as it is.
        """
        view = _parse_view(view.to_json(), self.pages) if isinstance(view, SavedView) else view
        with self._locked():
            views = self.load()
            if view.name in views and not overwrite:
                raise ViewExists(f"a view called {view.name!r} is saved already",
                                 fix="confirm the overwrite, or pick another name")
            views = dict(views)
            views[view.name] = view
            self._write_views(views)

    def delete(self, name: str) -> None:
        """Remove the view ``name`` (and its place in the presentation)."""
        name = check_view_name(name)
        with self._locked():
            views = self.load()
            if name not in views:
                raise ConfigError(f"no saved view is called {name!r}", fix="reload the page to see the saved views")
            order = self.presentation()
            views = {k: v for k, v in views.items() if k != name}
            self._write_views(views)
            if name in order:
                self._write_presentation([n for n in order if n != name])

    def _write_presentation(self, names: Sequence[str]) -> None:
        write_json(self.presentation_path, {"format": FORMAT_VERSION, "views": list(names)})

    def set_presentation(self, names: Sequence[str]) -> None:
        """Store the presentation: saved view names in order, each at most once."""
        checked = [check_view_name(n) for n in names]
        if len(set(checked)) != len(checked):
            raise ConfigError("a view appears twice in the presentation", fix="list each view once")
        with self._locked():
            self.presentation()  # a damaged presentation file is never overwritten silently
            views = self.load()
            unknown = [n for n in checked if n not in views]
            if unknown:
                raise ConfigError(f"the presentation names views that are not saved: {', '.join(map(repr, unknown))}",
                                  fix="save those views first, or leave them out")
            self._write_presentation(checked)

    def move_aside(self, path: Path) -> Path:
        """Rename a damaged file to ``<name>.damaged-<UTC time>`` beside it; returns the new path."""
        if path not in (self.path, self.presentation_path):
            raise ConfigError(f"{path} is not a file of the saved views", fix="move it by hand")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        path.rename(target)
        return target
