"""Ticket refs, taxonomy configuration, message catalogues, settings validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hotline.config import load_settings
from hotline.domain import ids, payloads
from hotline.errors import ConfigError, InvalidInput
from hotline.i18n import LANGUAGES, catalogue, format_local_date, plain, t
from hotline.taxonomy import load_taxonomy, parse_taxonomy
from templates import LOCALES_DIR


class TestRefs:
    def test_format(self) -> None:
        assert ids.format_ref(2026, 123) == "HL-2026-000123"

    @pytest.mark.parametrize("seq", [0, -1, 1_000_000])
    def test_format_rejects_out_of_range(self, seq: int) -> None:
        with pytest.raises(ValueError):
            ids.format_ref(2026, seq)

    @pytest.mark.parametrize(
        "typed", ["HL-2026-000123", "hl-2026-123", "HL 2026 000123", " xem HL-2026-000123 giúp "]
    )
    def test_parse_loose_input(self, typed: str) -> None:
        assert ids.parse_ref(typed) == "HL-2026-000123"

    @pytest.mark.parametrize("typed", ["", "123", "HL-26-1", "DROP TABLE tickets", "HL-2026-"])
    def test_parse_rejects(self, typed: str) -> None:
        with pytest.raises(InvalidInput) as info:
            ids.parse_ref(typed)
        assert info.value.key == "error.bad_ticket_ref"


class TestPayloads:
    def test_roundtrip(self) -> None:
        raw = payloads.build(payloads.ACK, "HL-2026-000001")
        assert payloads.parse(raw) == payloads.Payload("ack", "HL-2026-000001")

    @pytest.mark.parametrize("raw", [None, "", "ack", "ACK:x", "ack:<script>", "a" * 70 + ":1",
                                     "ack:HL-2026-1;drop", "x:" + "1" * 60])
    def test_parse_rejects_forged(self, raw: str | None) -> None:
        with pytest.raises(InvalidInput):
            payloads.parse(raw)

    def test_build_refuses_oversized(self) -> None:
        with pytest.raises(ValueError):
            payloads.build("ack", "x" * 60)


class TestTaxonomy:
    def test_default_has_the_eleven_categories(self) -> None:
        tax = load_taxonomy()
        assert tax.codes == ["legal", "procedure", "data", "funding", "procurement",
                             "infrastructure", "security", "authority", "workforce",
                             "innovation", "other"]
        assert tax.category("security").sla_days == 5
        assert tax.group_of("data").name_en == "Ministry of Public Security"
        assert tax.group_of("other").code == "standing_office"

    def _default(self) -> dict:
        from importlib import resources

        return tomllib.loads(resources.files("hotline.data").joinpath("taxonomy.toml").read_text())

    def test_operator_file_overrides(self, tmp_path: Path) -> None:
        data = self._default()
        data["categories"]["legal"]["sla_days"] = 20
        lines = []
        for section in ("groups", "categories"):
            for code, table in data[section].items():
                lines.append(f"[{section}.{code}]")
                lines += [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"'
                          for k, v in table.items()]
        path = tmp_path / "tax.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        assert load_taxonomy(path).category("legal").sla_days == 20

    @pytest.mark.parametrize(
        ("mutate", "needle"),
        [
            (lambda d: d["categories"]["legal"].pop("sla_days"), "categories.legal.sla_days"),
            (lambda d: d["categories"]["legal"].update(sla_days="ten"), "categories.legal.sla_days"),
            (lambda d: d["categories"]["legal"].update(group="nobody"), "categories.legal.group"),
            (lambda d: d["categories"]["legal"].update(colour="red"), "categories.legal.colour"),
            (lambda d: d["groups"]["moj"].update(name_vi=""), "groups.moj.name_vi"),
            (lambda d: d["categories"].pop("other"), "categories.other"),
            (lambda d: d.update(extra=1), "'extra'"),
        ],
    )
    def test_invalid_names_the_bad_key(self, mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
        data = self._default()
        mutate(data)
        with pytest.raises(ConfigError) as info:
            parse_taxonomy(data)
        assert needle in str(info.value)

    def test_unreadable_or_invalid_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot be read"):
            load_taxonomy(tmp_path / "missing.toml")
        bad = tmp_path / "bad.toml"
        bad.write_text("[groups\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="not valid TOML"):
            load_taxonomy(bad)


class TestCatalogues:
    def test_same_keys_in_every_language_and_file(self) -> None:
        files = {p.name for lang in LANGUAGES for p in (LOCALES_DIR / lang).glob("*.toml")}
        for name in files:
            keys = {}
            for lang in LANGUAGES:
                path = LOCALES_DIR / lang / name
                assert path.exists(), f"{lang}/{name} missing"
                flat: dict[str, str] = {}
                from hotline.i18n import _flatten

                _flatten("", tomllib.loads(path.read_text("utf-8")), flat)
                keys[lang] = set(flat)
            assert keys["vi"] == keys["en"], f"{name}: {keys['vi'] ^ keys['en']}"

    def test_placeholders_match_across_languages(self) -> None:
        import string

        vi, en = catalogue("vi"), catalogue("en")
        for key, text in vi.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            other = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
            assert fields == other, key

    def test_user_text_is_escaped(self) -> None:
        out = t("error.ticket_not_found", "en", ref="<script>alert(1)</script>")
        assert "<script>" not in out and "&lt;script&gt;" in out
        assert plain(out) == "Ticket <script>alert(1)</script> not found."

    def test_vietnamese_is_default(self) -> None:
        assert t("state.resolved", None) == "Đã xử lý"
        assert t("state.resolved", "en-US") == "Resolved"
        assert t("state.resolved", "fr") == "Đã xử lý"

    def test_dates(self) -> None:
        from datetime import UTC, datetime

        moment = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # 01:00 on 1 Jan in Hanoi
        assert format_local_date(moment, "vi") == "01/01/2027"
        assert format_local_date(moment, "en") == "01 Jan 2027"


class TestSettings:
    def test_bad_value_is_one_sentence(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HOTLINE_CLASSIFIER_THRESHOLD", "2")
        with pytest.raises(ConfigError, match="HOTLINE_CLASSIFIER_THRESHOLD"):
            load_settings()

    def test_dates_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HOTLINE_EXTRA_DAYS_OFF", "2026-12-31, 2027-01-02")
        assert [d.isoformat() for d in load_settings().extra_days_off] == ["2026-12-31", "2027-01-02"]

    def test_bad_language(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HOTLINE_DEFAULT_LANGUAGE", "fr")
        with pytest.raises(ConfigError, match="HOTLINE_DEFAULT_LANGUAGE"):
            load_settings()
