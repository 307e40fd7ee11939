"""The words a stakeholder meets in the explorer, the story and the report, each said in a sentence
or two: shown as help icons beside the widgets, columns and headings that use them, and as one
short list (`glossary_markdown`)."""

from __future__ import annotations

from compression.charts.format import NO_CHANGE, UNRELIABLE, UNRELIABLE_WHY

GLOSSARY: dict[str, str] = {
    "Pareto frontier": (
        "The runs that no other run beats on both counts: none is at least as accurate and at most as "
        "costly. The dashed step line joins them; every run below it is outdone by one on it."),
    "MACs": (
        "Multiply-accumulates for one image, counted on the model as it runs: the compute a model needs, "
        "the same on every machine (latency is that compute timed on this machine)."),
    "interval (95 % CI)": (
        "The range that holds the model's true accuracy, on all images of this kind, with 95 % confidence, "
        "given how many test images were used (Wilson interval): about ±0.6 points with 10,000 images, "
        "±1.3 with 2,000. Two runs whose intervals overlap may not really differ."),
    "simulated": (
        "A gain the stored or executed model does not realize yet: zeros kept in a dense file, or weights "
        "rounded to fewer bits but run in float. The accuracy is real; the simulated size, MACs or "
        "latency is what a runtime that exploits it would give. Drawn hollow, and left off the frontier "
        "unless you switch it on."),
    NO_CHANGE: (
        "The run and its uncompressed baseline, timed in alternation on the same runtime, are not "
        "measurably apart: the 95 % interval of the latency ratio includes 1."),
    UNRELIABLE: UNRELIABLE_WHY[0].upper() + UNRELIABLE_WHY[1:] + ".",
    "stored size": "The bytes of the file you can download for the run (dense, sparse or packed), as written.",
}


def explain(*words: str) -> str:
    """The glossary's sentences for these words, as one help text ("**word**: sentence" each)."""
    return "\n\n".join(f"**{w}**: {GLOSSARY[w]}" for w in words)


def glossary_markdown() -> str:
    """Every entry, one bullet each."""
    return "\n".join(f"- **{word}**: {text}" for word, text in GLOSSARY.items())
