"""PDF papers generated for the full-text tests (fpdf2): known sentences on known pages, one page in two columns.

``make_zephyr(path)`` writes a four-page paper whose body answers questions its
abstract does not (a temperature on page 2, in the left column of a two-column
page written row by row, so the content stream interleaves the columns; an error
rate on page 3; a cost ratio on page 4). ``ZEPHYR`` holds what the tests check:
each marker sentence and the page it is printed on. ``bad_pdfs(folder)`` writes one
file of each kind ingest must refuse with one message.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

TITLE = "Cryogenic Calibration of the Zephyr Spectrometer"
DOI = "10.5555/zephyr.2024.0007"
ABSTRACT = ("We calibrate the Zephyr spectrometer for measurements at low temperature. "
            "The abstract names neither the cooling temperature nor the number of detectors.")

# marker -> (page, section) of the sentence holding it
ZEPHYR = {
    "purple kites": (1, "1 Introduction"),
    "77 kelvin": (2, "2 Methods"),
    "twelve silicon detectors": (2, "2 Methods"),
    "0.4 percent": (3, "3 Results"),
    "calibration error against the number of cooling cycles": (3, "3 Results"),
    "eleven times": (4, "4 Discussion"),
}

LEFT = [
    "The spectrometer was cooled to 77 kelvin with",
    "liquid nitrogen before every measurement, and",
    "the chamber was evacuated for one hour before",
    "the cooling began.",
]
RIGHT = [
    "Each run used twelve silicon detectors arranged",
    "in a ring around the sample holder, and each",
    "detector was read out at one kilohertz during",
    "the run.",
]


def frame(pdf: FPDF, number: int, header: str = "Journal of Instrument Tests 7 (2024)", corner: str = "") -> None:
    """The running header (and an optional right-hand corner label) and the page number of one page."""
    pdf.set_font("Helvetica", "", 8)
    pdf.text(56, 36, header)
    if corner:
        pdf.text(480, 36, corner)
    pdf.text(290, 810, str(number))


def lines(pdf: FPDF, x: float, y: float, texts: list[str], size: float = 10, lead: float = 13, style: str = "") -> None:
    """Each text on its own line from (x, y) down, ``lead`` points apart."""
    pdf.set_font("Helvetica", style, size)
    for k, line in enumerate(texts):
        pdf.text(x, y + k * lead, line)


def make_zephyr(path: Path, title: str = TITLE, doi: str = DOI) -> Path:
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_title(title)
    pdf.set_auto_page_break(False)

    pdf.add_page()
    frame(pdf, 1)
    lines(pdf, 56, 90, [title], size=18, style="B")
    lines(pdf, 56, 130, ["Mara Quill1 and Otto Fenn2"], size=11)
    lines(pdf, 56, 148, ["1 Department of Physics, Example University, Exampletown",
                          "2 Institute of Instruments, Sample College, Sampleville",
                          f"https://doi.org/{doi}"], size=8, lead=10)
    lines(pdf, 56, 195, ["Abstract"], size=12, style="B")
    lines(pdf, 56, 212, ["We calibrate the Zephyr spectrometer for measurements at low temperature.",
                          "The abstract names neither the cooling temperature nor the number of detectors."])
    lines(pdf, 56, 255, ["1 Introduction"], size=12, style="B")
    lines(pdf, 56, 272, ["Spectrometers drift when their detectors warm up, so a calibration must hold at the",
                          "temperature of the measurement. The introduction sentence about purple kites is on",
                          "page one. We describe the cooling, the detectors and the calibration error."])

    pdf.add_page()
    frame(pdf, 2)
    lines(pdf, 56, 70, ["2 Methods"], size=12, style="B")
    pdf.set_font("Helvetica", "", 10)
    for k in range(max(len(LEFT), len(RIGHT))):  # row by row: the content stream interleaves the columns
        if k < len(LEFT):
            pdf.text(56, 88 + k * 13, LEFT[k])
        if k < len(RIGHT):
            pdf.text(310, 88 + k * 13, RIGHT[k])

    pdf.add_page()
    frame(pdf, 3)
    lines(pdf, 56, 70, ["3 Results"], size=12, style="B")
    lines(pdf, 56, 88, ["The calibration error of the Zephyr spectrometer fell to 0.4 percent after the third",
                         "cooling cycle, down from 2.9 percent at room temperature."])
    lines(pdf, 56, 140, ["Figure 2. The calibration error against the number of cooling cycles, for each",
                          "detector of the ring."], size=8, lead=10)

    pdf.add_page()
    frame(pdf, 4)
    lines(pdf, 56, 70, ["4 Discussion"], size=12, style="B")
    lines(pdf, 56, 88, ["Helium cooling would lower the noise floor further, but it costs eleven times as much",
                         "as liquid nitrogen for the same run."])
    lines(pdf, 56, 130, ["References"], size=12, style="B")
    lines(pdf, 56, 148, ["1. Quill M. Drift of cooled detectors. J Instr. 2019;4:11-19.",
                          "2. Fenn O. Nitrogen cryostats for spectrometers. Rev Instr. 2021;9:100-12."], size=9, lead=12)
    pdf.output(str(path))
    return path


def bad_pdfs(folder: Path) -> dict[str, str]:
    """One bad file of each kind: name -> the words its message holds."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    scan = FPDF()
    scan.add_page()
    scan.image(Image.new("L", (300, 400), 200), 10, 10, 150)
    scan.output(str(folder / "scanned.pdf"))

    locked = FPDF()
    locked.add_page()
    locked.set_font("Helvetica", size=12)
    locked.text(20, 20, "A locked sentence that cannot be read without the password.")
    locked.set_encryption(owner_password="owner", user_password="secret")
    locked.output(str(folder / "locked.pdf"))

    whole = make_zephyr(folder / "whole.tmp")
    data = whole.read_bytes()
    (folder / "truncated.pdf").write_bytes(data[: len(data) - 300])
    whole.unlink()

    (folder / "webpage.pdf").write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    return {"scanned.pdf": "no text layer", "locked.pdf": "encrypted", "truncated.pdf": "truncated",
            "webpage.pdf": "not a PDF"}
