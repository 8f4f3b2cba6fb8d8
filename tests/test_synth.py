"""Synthetic text renderer: determinism, shapes, fonts without tofu, text generators, config checks."""

from __future__ import annotations

import pickle
import string
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
matplotlib = pytest.importorskip("matplotlib")

from PIL import ImageFont  # noqa: E402

from crnn_cli import synth  # noqa: E402
from crnn_cli.core.charset import load_charset  # noqa: E402
from crnn_cli.core.errors import UsageError  # noqa: E402
from crnn_cli.core.images import cv2  # noqa: E402
from crnn_cli.synth import geometry, paint, sampling  # noqa: E402

MPL_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
EN_SPACE = load_charset("en", use_space_char=True)


@pytest.fixture(scope="module")
def renderer() -> synth.SynthRenderer:
    return synth.SynthRenderer(synth.SynthConfig(), EN_SPACE, seed=7)


def test_same_seed_and_index_same_image(renderer: synth.SynthRenderer) -> None:
    first = [renderer.sample(i) for i in range(30)]
    other = synth.SynthRenderer(synth.SynthConfig(), EN_SPACE, seed=7)
    # Another instance, drawn in another order (as DataLoader workers do), gives the same samples.
    for i in reversed(range(30)):
        img, text = other.sample(i)
        assert text == first[i][1]
        assert np.array_equal(img, first[i][0])
    assert len({t for _, t in first}) > 25  # and they are not all the same
    reseeded = synth.SynthRenderer(synth.SynthConfig(), EN_SPACE, seed=8)
    assert [reseeded.sample(i)[1] for i in range(10)] != [t for _, t in first[:10]]
    clone = pickle.loads(pickle.dumps(renderer))  # what a spawned worker receives
    assert np.array_equal(clone.sample(3)[0], first[3][0])


def test_output_shapes_and_labels(renderer: synth.SynthRenderer) -> None:
    lo, hi = renderer.config.height_range
    spaces = 0
    for i in range(200):
        img, text = renderer.sample(i)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.flags.c_contiguous
        assert lo <= img.shape[0] <= hi and img.shape[1] >= 1
        assert 1 <= len(text) <= 25 and text == text.strip()
        assert EN_SPACE.encode(text) is not None, text
        assert img.std() > 3, f"sample {i} ({text!r}) is blank"
        spaces += " " in text
    assert spaces > 10  # multi-word lines happen when the charset has a space


def test_rendered_text_is_where_the_ink_is(renderer: synth.SynthRenderer) -> None:
    # A plain configuration: dark text on a light, flat background; the ink spans most of the width.
    plain = synth.SynthConfig(
        **{f.name: 0.0 for f in fields(synth.SynthConfig) if f.name.startswith("p_")},
        background_weights=(1.0, 0.0, 0.0, 0.0),
    )
    r = synth.SynthRenderer(plain, EN_SPACE, seed=1)
    img, text = r.render("Hello World", np.random.default_rng(0))
    assert text == "Hello World"
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    dark = gray < gray.max() - 40
    cols = np.flatnonzero(dark.any(0))
    assert cols.size and (cols[-1] - cols[0]) > 0.6 * img.shape[1]
    assert img.shape[1] > 3 * img.shape[0]  # eleven characters are wider than tall


def test_ic15_charset_draws_both_cases_and_no_spaces() -> None:
    r = synth.SynthRenderer(charset=load_charset(None), seed=3)  # 0-9a-z, labels lowercased
    texts = [r.sample(i)[1] for i in range(150)]
    assert all(set(t) <= set(string.ascii_letters + string.digits) for t in texts)
    assert any(t != t.lower() for t in texts)  # capitals are fine: the label lowercases them
    with pytest.raises(UsageError, match="no font draws"):
        r.render("\u4e2d\u6587")


def test_every_font_draws_ascii_without_tofu(renderer: synth.SynthRenderer) -> None:
    names = {Path(p).name for p, _ in renderer.fonts}
    assert {"DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "STIXGeneral.ttf", "cmr10.ttf"} <= names
    alnum = set(string.ascii_letters + string.digits)
    for path, coverage in renderer.fonts:
        # A font may lack a few (Andika names its "a" and "g" unlike Adobe's list): texts that need
        # them use other fonts. Used at all, it covers nearly all.
        drawn = sorted(alnum & coverage)
        assert len(drawn) >= 56, path
        font = ImageFont.truetype(path, 32)
        tofu = bytes(font.getmask("\uffff"))
        masks = set()
        for ch in drawn:
            mask = font.getmask(ch)
            assert mask.getbbox() is not None and bytes(mask) != tofu, (path, ch)
            masks.add(bytes(mask))
        # Distinct glyphs, not one box repeated (l/I/1 may match). A caps-only face (Bebas Neue) draws
        # each lower-case letter as its capital: it is flagged small caps, draws upper-case texts only,
        # and its capitals and digits must be distinct.
        expected = len(drawn) - 4 - (26 if path in renderer.small_caps else 0)
        assert len(masks) >= expected, path


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("cmr10.ttf", "letters, not <>_{}|"),  # TeX encoding puts other glyphs on these codes
        ("cmsy10.ttf", "nothing"),
        ("cmex10.ttf", "nothing"),
        ("STIXSizOneSymReg.ttf", "nothing"),
        ("LastResortHE-Regular.ttf", "nothing"),
        ("DejaVuSansDisplay.ttf", "nothing"),
    ],
)
def test_symbol_and_tex_fonts_are_screened(name: str, expect: str) -> None:
    path = MPL_FONTS / name
    if not path.exists():
        pytest.skip(f"this matplotlib has no {name}")
    coverage = synth.font_coverage(str(path), tuple(EN_SPACE.symbols))
    if expect == "nothing":
        assert coverage == frozenset()
    else:
        assert set(string.ascii_letters + string.digits) <= coverage
        assert not set("<>_{}|") & coverage


def test_text_files_teach_words_and_ngrams(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("zebrafish\nquokka\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("img/1.png\tnarwhal lagoon\n")
    cfg = synth.SynthConfig(text_files=(str(words), str(labels)), text_weights=(("word", 1.0),))
    r = synth.SynthRenderer(cfg, EN_SPACE, seed=0)
    assert r.text_source.words == ["lagoon", "narwhal", "quokka", "zebrafish"]
    seen = {r.text_source.word(np.random.default_rng(i)).lower().strip('"().,:!?;') for i in range(300)}
    assert {"zebrafish", "quokka", "narwhal", "lagoon"} <= seen
    with pytest.raises(UsageError, match="cannot read"):
        synth.SynthRenderer(replace(cfg, text_files=(str(tmp_path / "missing.txt"),)), EN_SPACE)


def test_char_ngram_learns_what_it_saw() -> None:
    model = synth.CharNgram(["abc"] * 5)
    rng = np.random.default_rng(0)
    assert {model.sample(rng, 10) for _ in range(20)} == {"abc"}
    assert not synth.CharNgram([])


def test_generators_cover_the_promised_kinds() -> None:
    source = synth.TextSource(synth.SynthConfig(), EN_SPACE.symbols)
    rng = np.random.default_rng(0)
    assert any("@" in source.email(rng) for _ in range(20))
    assert any(":" in source.date(rng) for _ in range(40))
    assert any(any(c.isdigit() for c in source.price(rng)) for _ in range(5))
    assert all(source._fits(source(rng)) for _ in range(300))


def test_background_folder_is_used(tmp_path: Path) -> None:
    bg = tmp_path / "bg"
    bg.mkdir()
    cv2.imwrite(str(bg / "red.png"), np.full((80, 120, 3), (0, 0, 255), np.uint8))
    cfg = synth.SynthConfig(
        background_dir=str(bg),
        background_weights=(0.0, 0.0, 0.0, 1.0),
        p_invert=0.0,
        p_gray=0.0,
        p_contrast=0.0,
        p_clutter=0.0,
    )
    r = synth.SynthRenderer(cfg, EN_SPACE, seed=0)
    reds = [img[:, :, 2].mean() - img[:, :, 1].mean() for img, _ in (r.sample(i) for i in range(10))]
    assert np.median(reds) > 30  # the red photo shows through the tint
    with pytest.raises(UsageError, match="background folder"):
        synth.SynthRenderer(replace(cfg, background_dir=str(tmp_path / "nope")), EN_SPACE)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"p_blur": 1.5}, "p_blur"),
        ({"height_range": (64, 32)}, "height_range"),
        ({"max_rotation": -1.0}, "max_rotation"),
        ({"text_weights": (("poems", 1.0),)}, "text_weights"),
        ({"min_text_length": 0}, "min_text_length"),
    ],
)
def test_config_validation_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(UsageError, match=field):
        synth.SynthConfig(**change)


def test_no_fonts_is_a_clear_error(tmp_path: Path) -> None:
    cfg = synth.SynthConfig(
        matplotlib_fonts=False, system_fonts=False, package_fonts=False, font_dirs=(str(tmp_path),)
    )
    with pytest.raises(UsageError, match="no usable font"):
        synth.SynthRenderer(cfg)


def test_extra_font_dir_is_searched(tmp_path: Path) -> None:
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "Mine.ttf").write_bytes((MPL_FONTS / "DejaVuSansMono.ttf").read_bytes())
    cfg = synth.SynthConfig(
        matplotlib_fonts=False, system_fonts=False, package_fonts=False, font_dirs=(str(tmp_path / "fonts"),)
    )
    r = synth.SynthRenderer(cfg, EN_SPACE)
    assert [Path(p).name for p, _ in r.fonts] == ["Mine.ttf"]
    assert r.sample(0)[0].shape[2] == 3


def _test_font(path: Path) -> None:
    """A TrueType font drawing a distinct bar pattern per letter/digit; 'x' is empty, 'q' is the tofu box."""
    from fontTools.agl import UV2AGL
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    def rects(*boxes: tuple[int, int, int, int]) -> object:
        pen = TTGlyphPen(None)
        for x0, y0, x1, y1 in boxes:
            pen.moveTo((x0, y0))
            pen.lineTo((x0, y1))
            pen.lineTo((x1, y1))
            pen.lineTo((x1, y0))
            pen.closePath()
        return pen.glyph()

    box = (
        (50, 0, 550, 700),
        (100, 650, 500, 50),
    )  # outer square, inner one drawn the other way: a hollow box
    chars = string.ascii_letters + string.digits
    names = {c: UV2AGL[ord(c)] for c in chars}
    glyphs = {".notdef": rects(*box), "space": rects()}
    for i, c in enumerate(chars):
        glyphs[names[c]] = rects((50, 0, 150 + 6 * i, 300), (50, 350, 120, 400 + 5 * i))
    glyphs["x"], glyphs["q"] = rects(), rects(*box)
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(list(glyphs))
    fb.setupCharacterMap({ord(c): names[c] for c in chars} | {32: "space"})
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({name: (600, 0) for name in glyphs})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Bars", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))


def test_empty_and_tofu_glyphs_are_not_covered(tmp_path: Path) -> None:
    path = tmp_path / "Bars.ttf"
    _test_font(path)
    coverage = synth.font_coverage(str(path), tuple(string.ascii_letters + string.digits + " "))
    assert "x" not in coverage and "q" not in coverage  # mapped and well named, but draw nothing / a box
    assert set(string.ascii_letters + string.digits) - {"x", "q"} <= coverage and " " in coverage


def _package_font(name: str) -> Path:
    for folder in synth.package_font_dirs():
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"no pip font package with {name} installed (the synth extra ships it)")


def test_pip_font_packages_are_found_and_weighted_by_family() -> None:
    roboto = _package_font("Roboto-Regular.ttf")
    found = synth.discover_fonts(matplotlib_fonts=False, system_fonts=False, package_fonts=True)
    assert roboto in found
    assert len({p.stem.lower() for p in found}) == len(found)  # Source Sans ships .otf and .ttf: once
    assert synth.font_family(str(roboto)) == "Roboto"
    assert synth.font_family(str(roboto.with_name("Roboto-BoldItalic.ttf"))) == "Roboto"


def test_small_caps_fonts_draw_only_upper_case_texts(tmp_path: Path) -> None:
    amatic = _package_font("AmaticSC-Regular.ttf")
    assert synth.draws_small_caps(str(amatic))
    assert not any(synth.draws_small_caps(str(MPL_FONTS / n)) for n in ("DejaVuSans.ttf", "DejaVuSerif.ttf"))
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / amatic.name).symlink_to(amatic)
    cfg = synth.SynthConfig(
        matplotlib_fonts=False, system_fonts=False, package_fonts=False, font_dirs=(str(fonts),)
    )
    r = synth.SynthRenderer(cfg, EN_SPACE)
    assert r.render("OPEN 24H")[1] == "OPEN 24H"
    with pytest.raises(UsageError, match="no font draws"):
        r.render("Open")  # its "pen" would be capitals under a lower-case label


def test_keycap_fonts_are_screened() -> None:
    path = Path("/usr/share/fonts/opentype/linux-libertine/LinBiolinum_K.otf")  # Debian fonts-linuxlibertine
    if not path.is_file():
        pytest.skip("Debian's fonts-linuxlibertine (a keycap font) is not installed")
    assert synth.font_coverage(str(path), tuple(EN_SPACE.symbols)) == frozenset()


def test_common_words_labels_and_receipt_fields(tmp_path: Path) -> None:
    pytest.importorskip("wordfreq", reason="common_words needs wordfreq (the synth extra)")
    words = synth.common_words(2000)
    assert words[:3] == ("the", "to", "and") or words[0] == "the"
    labels = tmp_path / "labels.tsv"
    labels.write_text("a.png\tTOTAL RM 12.50\nb.png\tThank You!\n")
    cfg = synth.SynthConfig(
        common_words=2000,
        text_files=(str(labels),),
        text_weights=(("word", 1.0), ("label", 1.0), ("receipt", 1.0)),
    )
    source = synth.TextSource(cfg, EN_SPACE.symbols, synth.read_texts([labels]), words)
    rng = np.random.default_rng(3)
    drawn = [source(rng) for _ in range(600)]
    assert {"TOTAL RM 12.50", "Thank You!"} <= set(drawn)  # whole label lines, as they are
    common = set(words)
    assert sum(t.lower() in common for t in drawn) > 100  # real words, in any case
    receipts = [t for t in (source.receipt(rng) for _ in range(80)) if source._fits(t)]
    assert len(receipts) > 50  # the rest is retried by source() (a currency sign outside "en", say)
    assert sum(any(c.isdigit() for c in t) for t in receipts) > 25 and any(":" in t for t in receipts)
    with pytest.raises(UsageError, match="between|must be"):
        synth.SynthConfig(common_words=-1)


def _plain(**change: float) -> synth.SynthConfig:
    """Every random effect off and a flat background, except ``change``."""
    off = {f.name: 0.0 for f in fields(synth.SynthConfig) if f.name.startswith("p_")}
    return synth.SynthConfig(**{**off, **change}, background_weights=(1.0, 0.0, 0.0, 0.0))


def test_dot_screen_covers_the_share_its_dots_should() -> None:
    screen = paint._dot_screen(64, 256, pitch=4.0, angle=0.0, radius=0.4)
    assert screen.dtype == np.float32 and screen.shape == (64, 256)
    assert screen.min() == 0.0 and screen.max() == 1.0
    assert abs(float(screen.mean()) - np.pi * 0.4**2) < 0.06  # round dots of 0.8 pitch across
    turned = paint._dot_screen(64, 256, pitch=4.0, angle=45.0, radius=0.4)
    assert abs(float(turned.mean()) - float(screen.mean())) < 0.03 and not np.allclose(turned, screen)


def test_dot_matrix_print_breaks_the_strokes_into_dots() -> None:
    gray = {}
    for name, cfg in (("solid", _plain()), ("dots", _plain(p_dot_matrix=1.0))):
        img, _ = synth.SynthRenderer(cfg, EN_SPACE, seed=1).render("TOTAL 12.50", np.random.default_rng(5))
        gray[name] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert gray["solid"].shape == gray["dots"].shape  # same glyphs, same crop: only the ink differs
    solid_ink = gray["solid"] < gray["solid"].max() - 60
    # Inside the solid strokes, a dot-matrix printer leaves paper between its dots.
    assert float((gray["dots"][solid_ink] > gray["solid"].max() - 60).mean()) > 0.2


def test_halftone_shading_is_a_dot_pattern_lighter_than_the_print() -> None:
    cfg = _plain(p_halftone=1.0)
    img, _ = synth.SynthRenderer(cfg, EN_SPACE, seed=1).render("SDN BHD", np.random.default_rng(9))
    flat, _ = synth.SynthRenderer(_plain(), EN_SPACE, seed=1).render("SDN BHD", np.random.default_rng(9))
    g, f = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32) for x in (img, flat))
    paper = np.abs(f - np.median(f)) < 2  # where the flat rendering shows only paper
    ink = f < np.median(f) - 60
    assert paper.mean() > 0.3 and ink.any()
    assert g[paper].std() > 8  # the paper is screened with dots now
    assert np.median(g[paper]) > np.median(g[ink]) + 30  # and the text still stands out from it


def test_dot_screen_keeps_about_the_share_of_dots_asked() -> None:
    full = paint._dot_screen(96, 384, pitch=6.0, angle=0.0, radius=0.25)
    part = paint._dot_screen(
        96, 384, pitch=6.0, angle=0.0, radius=0.25, keep=0.4, rng=np.random.default_rng(1)
    )
    assert np.all(part <= full)  # dots are dropped, never moved or grown
    assert 0.3 < float(part.sum() / full.sum()) < 0.5
    again = paint._dot_screen(
        96, 384, pitch=6.0, angle=0.0, radius=0.25, keep=0.4, rng=np.random.default_rng(1)
    )
    assert np.array_equal(part, again)


def test_stipple_scatters_sparse_dark_dots_on_the_paper() -> None:
    img, _ = synth.SynthRenderer(_plain(p_stipple=1.0), EN_SPACE, seed=1).render(
        "SDN BHD", np.random.default_rng(9)
    )
    flat, _ = synth.SynthRenderer(_plain(), EN_SPACE, seed=1).render("SDN BHD", np.random.default_rng(9))
    g, f = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32) for x in (img, flat))
    paper = np.abs(f - np.median(f)) < 2
    ink_level = float(np.percentile(f, 2))  # the print's darkness in the flat rendering
    dark = g[paper] < (np.median(f) + ink_level) / 2  # paper pixels now darker than half-way to the ink
    assert paper.mean() > 0.3
    assert 0.01 < float(dark.mean()) < 0.35  # sparse dots, most of the paper left bare


def test_noise_windows_are_standard_normal_and_seeded() -> None:
    a = sampling._gaussian(np.random.default_rng(7), (48, 200, 3))
    b = sampling._gaussian(np.random.default_rng(7), (48, 200, 3))
    c = sampling._gaussian(np.random.default_rng(8), (48, 200, 3))
    assert a.shape == (48, 200, 3) and a.dtype == np.float32 and not a.flags.writeable
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1.0) < 0.05
    # neighbouring pixels uncorrelated, as fresh draws would be
    flat = a.reshape(-1)
    assert abs(float(np.corrcoef(flat[:-1], flat[1:])[0, 1])) < 0.03
    big = sampling._gaussian(np.random.default_rng(7), (sampling._NOISE_TABLE_SIZE + 1,))
    assert big.shape == (sampling._NOISE_TABLE_SIZE + 1,) and abs(float(big.std()) - 1.0) < 0.01


def _ink_rows(layers: np.ndarray) -> np.ndarray:
    """Per inked column, the middle row of the ink (NaN where a column has none)."""
    ink = layers[:, :, 0] > 127
    rows = np.arange(ink.shape[0], dtype=np.float64)[:, None]
    count = ink.sum(0)
    return np.where(count > 0, (ink * rows).sum(0) / np.maximum(count, 1), np.nan)


@pytest.mark.parametrize("seed", range(6))
def test_arc_bends_the_text_along_a_circle_and_keeps_its_length(seed: int) -> None:
    # A flat bar of "ink" one text-height thick: after the arc its middle row follows a circle, so the
    # ends sit above (an arch) or below (a bowl) the middle, and its length along the circle is kept.
    h, w, mid = 40, 400, 20.0
    layers = np.zeros((h, w, 3), dtype=np.uint8)
    layers[14:27, 20:380, 0] = 255
    bent = geometry._arc(layers, mid, 150.0, np.random.default_rng(seed))
    centre = _ink_rows(bent)
    cols = np.flatnonzero(~np.isnan(centre))
    ends = (centre[cols[:15]].mean() + centre[cols[-15:]].mean()) / 2
    middle = centre[cols[len(cols) // 2 - 5 : len(cols) // 2 + 5]].mean()
    assert abs(ends - middle) > 10  # bent, not shifted
    assert bent.shape[0] > h
    # The bar's middle row lies on a circle (least-squares fit, pixel-sized residuals), and its length
    # along that circle is the flat bar's 360 columns: the text is bent, not stretched.
    inner = cols[len(cols) // 12 : -len(cols) // 12]  # a column at the slanted end cuts only a corner
    x, y = inner.astype(np.float64), centre[inner]
    design = np.column_stack([x, y, np.ones_like(x)])
    (a, b, c), *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    cx, cy = a / 2, b / 2
    radius = np.sqrt(c + cx * cx + cy * cy)
    assert np.abs(np.hypot(x - cx, y - cy) - radius).max() < 2.0
    angles = np.arctan2(x - cx, np.abs(y - cy))
    assert abs(radius * (angles.max() - angles.min()) - 360 * len(inner) / len(cols)) < 0.06 * 360


def test_arc_vanish_and_cut_render_whole_labelled_samples() -> None:
    cfg = synth.SynthConfig(p_arc=1.0, p_vanish=1.0, p_tight=1.0, p_cut=1.0)
    r = synth.SynthRenderer(cfg, EN_SPACE, seed=11)
    plain = synth.SynthRenderer(replace(cfg, p_arc=0.0, p_vanish=0.0, p_cut=0.0), EN_SPACE, seed=11)
    taller = 0
    for i in range(12):
        img, text = r.sample(i)
        assert img.ndim == 3 and img.shape[2] == 3 and img.shape[1] >= 1 and text.strip()
        flat, flat_text = plain.sample(i)
        assert flat_text == text  # geometry never changes the label
        taller += img.shape[1] / img.shape[0] < flat.shape[1] / flat.shape[0]
    assert taller >= 8  # a bent text's box is taller for its width than the flat one's
