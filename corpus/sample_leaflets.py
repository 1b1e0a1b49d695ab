"""Real-looking clinic leaflets (PDF, DOCX, HTML), built on demand, to test and compare converters.

The PDF has what real leaflets have and extractors stumble on: a running header and footer with
the page number on every page, words hyphenated at line ends, two columns and a table; a second
PDF is a "scan" (an image, no text layer). Needs the test-time builders of requirements-dev.txt
(reportlab, python-docx). `FACTS` are sentences only these leaflets state, so a test can ask a
question that only the new leaflet answers.
"""
from __future__ import annotations

from pathlib import Path

CLINIC = "Riverside Vein Clinic"
HEADER = f"{CLINIC} - Patient information"
FOOTER = "Leaflet RVC-117, issued March 2026"

# Section heading -> paragraphs. Sentences that must survive conversion word for word.
LEAFLET = {
    "Compression stockings and night cramps": [
        "Graduated compression stockings squeeze the ankle more than the calf, which helps "
        "the veins return blood to the heart. Wear them from morning until bedtime.",
        "Our vascular nurse measures your ankle and calf circumference before the first pair "
        "is prescribed. Stockings that are too tight can themselves provoke cramping.",
    ],
    "Varicose veins and aching calves": [
        "Varicose veins are swollen, twisted veins close to the skin surface. Many people "
        "with varicose veins describe heaviness and throbbing in the calves by the evening.",
        "Elevating the legs above hip level for twenty minutes relieves the throbbing for "
        "most patients. Walking for half an hour each day strengthens the calf muscle pump.",
    ],
    "The Tuesday vein clinic": [
        "The Riverside vein clinic runs every Tuesday morning from eight until noon in room "
        "fourteen. Bring your current stockings and a list of your medicines.",
        "Appointments are made by the practice nurse after an ultrasound scan of the leg veins.",
    ],
}
TABLE = [("Stocking class", "Ankle pressure", "Typical use"),
         ("Class 1", "15-21 mmHg", "Mild varicose veins"),
         ("Class 2", "23-32 mmHg", "Moderate varicose veins")]
# Sentences no shipped source states: questions about them only the leaflet can answer.
FACTS = [
    "The Riverside vein clinic runs every Tuesday morning from eight until noon in room fourteen.",
    "Elevating the legs above hip level for twenty minutes relieves the throbbing for most patients.",
]


def all_sentences() -> list[str]:
    """Every body sentence of the leaflet, for checking what a converter kept intact."""
    import re

    sentences = []
    for paragraphs in LEAFLET.values():
        for paragraph in paragraphs:
            sentences += re.split(r"(?<=\.)\s+", paragraph)
    return sentences


def build_pdf(path: Path, *, pages: int = 3) -> Path:
    """A two-column PDF leaflet: header, footer and "Page n of N" on every page, hyphenated
    line ends, a table on the last page. Each section fills one column."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    width, height = A4
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle("Compression stockings, varicose veins and calf cramps")
    sections = list(LEAFLET.items())
    columns = [(50, 255), (310, 255)]  # x, width in points
    for page in range(pages):
        _page_furniture(pdf, page + 1, pages, width, height)
        for column, (x, column_width) in enumerate(columns):
            n = page * 2 + column
            if n >= len(sections):
                break
            heading, paragraphs = sections[n]
            _column(pdf, heading, paragraphs, x, height - 110, column_width)
        if page == pages - 1:
            _table(pdf, 50, 260)
        pdf.showPage()
    pdf.save()
    return path


def _page_furniture(pdf, page: int, pages: int, width: float, height: float) -> None:
    pdf.setFont("Helvetica", 8)
    pdf.drawString(50, height - 40, HEADER)
    pdf.drawRightString(width - 50, height - 40, "www.riverside-veins.example")
    pdf.drawString(50, 30, FOOTER)
    pdf.drawRightString(width - 50, 30, f"Page {page} of {pages}")


def _column(pdf, heading: str, paragraphs: list[str], x: float, y: float, width: float) -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    pdf.setFont("Helvetica-Bold", 13)
    pdf.drawString(x, y, heading)
    y -= 24
    for paragraph in paragraphs:
        for line in _wrap_hyphenated(paragraph, width, lambda s: stringWidth(s, "Helvetica", 10)):
            pdf.setFont("Helvetica", 10)
            pdf.drawString(x, y, line)
            y -= 13
        y -= 9


def _wrap_hyphenated(text: str, width: float, measure) -> list[str]:
    """Lines of at most `width`; a long word that does not fit is split with a hyphen, as a
    typesetter would ("circum-" / "ference")."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if measure(candidate) <= width:
            line = candidate
            continue
        if len(word) >= 8:
            for cut in range(len(word) - 3, 2, -1):
                head = f"{line} {word[:cut]}-".strip()
                if measure(head) <= width:
                    lines.append(head)
                    line = word[cut:]
                    break
            else:
                lines.append(line)
                line = word
            continue
        lines.append(line)
        line = word
    lines.append(line)
    return lines


def _table(pdf, x: float, y: float) -> None:
    pdf.setFont("Helvetica-Bold", 13)
    pdf.drawString(x, y + 30, "Stocking classes")
    widths = [120, 120, 200]
    for r, row in enumerate(TABLE):
        pdf.setFont("Helvetica-Bold" if r == 0 else "Helvetica", 10)
        cx = x
        for cell, cell_width in zip(row, widths):
            pdf.rect(cx, y - r * 20 - 6, cell_width, 20)
            pdf.drawString(cx + 4, y - r * 20, cell)
            cx += cell_width


def build_scanned_pdf(path: Path) -> Path:
    """A PDF whose only content is a picture of text, as a scanner makes: no text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("RGB", (600, 300), "white")
    ImageDraw.Draw(image).text((20, 20), "Compression stockings help aching calves.", fill="black")
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.drawImage(ImageReader(image), 50, 400, width=500, height=250)
    pdf.showPage()
    pdf.save()
    return path


def build_docx(path: Path) -> Path:
    """A Word leaflet: Heading styles, a page header and footer, body paragraphs and a table."""
    import docx

    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = HEADER
    section.footer.paragraphs[0].text = FOOTER
    document.add_heading("Compression stockings, varicose veins and calf cramps", level=1)
    for heading, paragraphs in LEAFLET.items():
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.add_heading("Stocking classes", level=2)
    table = document.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for r, row in enumerate(TABLE):
        for c, cell in enumerate(row):
            table.cell(r, c).text = cell
    document.save(str(path))
    return path


def build_html(path: Path) -> Path:
    """A page of the clinic's site: navigation, a cookie banner script, header, footer, a table."""
    import html

    body = []
    for heading, paragraphs in LEAFLET.items():
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in paragraphs]
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in TABLE)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Varicose veins | {CLINIC}</title>
<style>body {{ font-family: sans-serif; }}</style>
<script>window.cookieBanner = "We use cookies";</script></head>
<body><header><nav><a href="/">Home</a> <a href="/services">Services</a></nav>
<p>{html.escape(HEADER)}</p></header>
<main><h1>Compression stockings, varicose veins and calf cramps</h1>
{''.join(body)}
<h2>Stocking classes</h2><table>{rows}</table></main>
<footer><p>{html.escape(FOOTER)}</p></footer></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
