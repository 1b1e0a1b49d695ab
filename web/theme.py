"""The clinic's colours (settings.web) as a Gradio theme for the widget and as CSS variables for
the full page, whose theme app.py does not set: both look like the clinic, from one table."""
from __future__ import annotations

import inspect

import gradio as gr

from bot.settings import WebSettings


def clinic_colours(web: WebSettings) -> tuple[dict[str, str], dict[str, str]]:
    """Gradio theme variables in the clinic's colour: (light mode, dark mode)."""
    primary, on_primary = web.primary_color, web.on_primary_color
    same = {  # the clinic's colour in light and dark mode alike
        "color_accent": primary, "border_color_accent": primary, "loader_color": primary,
        "button_primary_background_fill": primary,
        "button_primary_background_fill_hover": _mix(primary, 0.85, "#000000"),
        "button_primary_text_color": on_primary, "button_primary_border_color": primary,
        "input_border_color_focus": primary, "link_text_color": primary,
    }
    light = {
        **same,
        "color_accent_soft": _mix(primary, 0.12),
        "border_color_accent_subdued": _mix(primary, 0.35),
        # The default subdued grey is too faint for the disclaimer in the greeting and the
        # source labels (WCAG AA asks 4.5:1; this is 5:1 on white, 4.7:1 on the cards' grey).
        "body_text_color_subdued": "#5d6778",
    }
    dark = {**same, "color_accent_soft": _mix(primary, 0.35, "#111827"),
            "border_color_accent_subdued": _mix(primary, 0.6, "#111827")}
    return light, dark


def widget_theme(web: WebSettings) -> gr.themes.Base:
    """Gradio's default theme in the clinic's colour (accent, buttons, the user's bubbles)."""
    light, dark = clinic_colours(web)
    theme = gr.themes.Default()
    names = set(inspect.signature(theme.set).parameters)  # not every variable has a _dark twin
    dark_only = {f"{name}_dark": value for name, value in dark.items() if f"{name}_dark" in names}
    return theme.set(**light, **dark_only)


def clinic_css(web: WebSettings) -> str:
    """The same colours as CSS custom properties over Gradio's defaults (the full page)."""
    light, dark = clinic_colours(web)

    def block(selector: str, values: dict[str, str]) -> str:
        body = "; ".join(f"--{name.replace('_', '-')}: {value}" for name, value in values.items())
        return f"{selector} {{ {body}; }}"

    return "\n".join([block(":root:root, :root .gradio-container", light),
                      block(":root .dark, .dark .gradio-container", dark)])


def _mix(colour: str, share: float, other: str = "#ffffff") -> str:
    """`share` of `colour` blended into `other` (both #rrggbb, validated by the settings)."""
    channels = [
        round(share * int(colour[i:i + 2], 16) + (1 - share) * int(other[i:i + 2], 16))
        for i in (1, 3, 5)
    ]
    return "#" + "".join(f"{value:02x}" for value in channels)
