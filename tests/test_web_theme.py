"""The clinic's colours: readable (WCAG AA, 4.5:1) in the defaults and the example clinic, and
colours that are not are named with their ratio."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.settings import WebSettings
from web.theme import clinic_colours, clinic_css, colour_problems, contrast_ratio

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "clinic-site" / "crampbot.json"


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def test_default_and_example_clinic_colours_are_readable():
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))["web"]
    for web in (WebSettings(), WebSettings(**example)):
        assert colour_problems(web) == [], web.primary_color
        light, _ = clinic_colours(web)
        for background in ("#ffffff", "#fafafa"):  # the page, the answers' grey
            assert contrast_ratio(light["body_text_color_subdued"], background) >= 4.5


def test_unreadable_clinic_colours_are_named_with_their_ratio():
    problems = colour_problems(WebSettings(primary_color="#f98e44", on_primary_color="#ffffff"))
    assert len(problems) == 4, problems
    assert problems[0].startswith("on_primary_color on primary_color") and ":1, needs 4.5:1" in problems[0]
    assert colour_problems(WebSettings(primary_color="#0f766e", on_primary_color="#111111"))


def test_page_css_carries_the_clinic_colour_for_light_and_dark_mode():
    css = clinic_css(WebSettings(primary_color="#123456"))
    light, dark = css.splitlines()
    assert light.startswith(":root:root {") and dark.startswith(":root:root .dark {")
    assert "--color-accent: #123456" in light
    assert "--button-primary-background-fill: #123456" in dark
    assert "--button-primary-text-color: #ffffff" in light


def test_dark_mode_lightens_the_clinic_colour_where_it_is_text():
    _, dark = clinic_colours(WebSettings(primary_color="#0f766e"))
    assert dark["color_accent"] != "#0f766e"
    assert contrast_ratio(dark["color_accent"], "#27272a") >= 4.5


def test_the_app_refuses_clinic_colours_visitors_could_not_read(fake_settings):
    from app import build_app
    from bot.errors import ConfigError

    unreadable = fake_settings.model_copy(update={"web": fake_settings.web.model_copy(
        update={"primary_color": "#f98e44"})})  # orange: 2.2:1 on white
    with pytest.raises(ConfigError, match="hard to read.*primary_color on white"):
        build_app(None, unreadable)
