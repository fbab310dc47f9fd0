"""Checks for ``eval/datasets/researcher.jsonl``, the dev set written the way researchers ask.

Run from the repository root (standard library only, no network, well under a second):

    python eval/datasets/check_researcher.py          # summary, exit status 1 on any failure
    python eval/datasets/check_researcher.py -v       # also every overlap, hit and note

It parses the bundled library (``data/daily-papers/*.txt``) the way README.md describes (boilerplate
lines dropped, then title and abstract lines alternating; 319 entries, 241 unique papers) and checks:

* every line is a JSON object with the dev set's keys in order, ids ``res-NNN`` unique and in order;
* every gold title matches exactly one unique library title; every key fact (1-5 words) is a
  case-insensitive verbatim substring of a gold title or abstract (``\\%`` read as ``%``);
* ``paraphrase``: the question shares no rare word (in at most 3 of the 241 papers) with its gold
  title or abstract, and no title word that is not generic (a word in at least 15 papers); words are
  compared after a crude suffix stripping so "reusing" meets "Reusable";
* ``acronym``: the name occurs in the question and every gold paper; the other papers that use it are
  listed below with the reason they are not gold;
* ``topic``: every gold paper and every paper left out matches one of the keywords grepped; the
  other keyword hits are printed with ``-v`` (they were read and are off the topic);
* unanswerable ``off-topic``: no pattern matches any title or abstract, except the matches listed
  (read; noted why they are not about the subject); ``near-miss``: the patterns match neither the
  named abstracts nor (for "is there work on X") any abstract matching all groups.

The tables below are the record of how the file was checked; README.md repeats them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "daily-papers"
QUESTIONS = ROOT / "eval" / "datasets" / "researcher.jsonl"

# The library is parsed here again, standard library only, on purpose: the dev set's checks must not rest on
# the reader (ingest/readers/daily_papers.py) whose output they help judge.
BOILERPLATE = {
    s.casefold()
    for s in (
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
        "by AK and the research community",
    )
}
DATE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(,?\s+\d{4})?$", re.I)
KEYS = ["id", "question", "type", "gold_titles", "key_facts", "answerable"]
TYPES = {"paraphrase", "acronym", "topic", "compare", "unanswerable"}

RARE_MAX_DF = 3  # a word in at most this many of the 241 papers is rare
GENERIC_MIN_DF = 15  # a title word in at least this many papers is generic
STOPWORDS = set(
    """a an the and or of to in on for with by from as at is are was were be been being it its this that
    these those there their them they we our you your i my me do does did done has have had having can
    could would should will shall may might must not no nor so than then too very just only also into onto
    over under about after before between through during without within across up down out off again
    further once here when where why how what which who whom whose all any both each few more most other
    some such own same s t don now if but because until while anyone someone something anything way ways
    get got getting one ones much many really actually still even instead rather whether kind sort lot
    well let make makes made like""".split()
)

# The tables name papers by the start of their title (each prefix matches exactly one title).

# acronym id -> (the name as a regular expression, {other paper using the name: why it is not gold})
ACRONYMS: dict[str, tuple[str, dict[str, str]]] = {
    "res-054": (r"tofu", {}),  # no abstract introduces TOFU; both that describe it are gold
    "res-055": (r"\bNPO\b", {}),
    "res-056": (r"DCLM", {"Metadata Conditioning": "names DCLM only as one of its training corpora"}),
    "res-057": (r"\bMUSE\b", {}),
    "res-058": (r"\bHELM\b", {}),
    "res-059": (r"ZeTT", {}),
    "res-060": (r"BLURB", {}),
    "res-061": (r"WIKIMIA", {}),
    "res-062": (r"\bMAFT\b", {}),
    "res-063": (r"\bUDR\b", {}),
    "res-064": (r"EL2N", {}),
    "res-065": (r"MEAP", {}),
    "res-066": (r"BabyLM", {
        "Linguistic Structure Induction": "benchmarks its models by taking part in the challenge",
        "CLIMB": "a team's entry to the challenge's strict-small track; the findings paper describes the challenge",
    }),
    "res-067": (r"(?-i:\bCLEAR\b)", {}),
    "res-068": (r"infty-gram", {}),
    "res-069": (r"\bLbT\b", {}),
}

# topic id -> (keywords grepped, {borderline paper left out: why})
TOPICS: dict[str, tuple[list[str], dict[str, str]]] = {
    "res-070": ([r"unlearn", r"forget", r"forgotten", r"erase"], {
        "Pretraining Language Models with Human Preferences": "contrasts feedback in pretraining with 'learning and then unlearning' by finetuning; removes no knowledge or data",
        "Dual Process Learning": "forgets embeddings on purpose to steer in-context vs in-weights learning, not to remove knowledge",
    }),
    "res-071": ([r"medic", r"clinic", r"biomedic", r"health", r"patient", r"pubmed", r"disease", r"\bdrug"], {
        "BudgetLongformer": "legal domain; PubMed is only an out-of-domain evaluation",
        "LangCell": "single-cell transcriptomics (cell types, disease labels), not text",
        "Large-Scale Chemical Language Representations": "molecules for drug discovery, not biomedical text",
    }),
    "res-072": ([r"speech", r"spoken", r"audio", r"wav2vec", r"\basr\b", r"phonem", r"pronunciation"], {
        "A Review of Multi-Modal Large Language and Vision Models": "lists text-to-speech and audio among MM-LLM applications; no speech pre-training",
        "Item-Language Model for Conversational Recommendation": "mentions audio only as an LLM modality",
    }),
    "res-073": ([r"in-context", r"\bICL\b", r"in context", r"induction head", r"meta-optimi"], {
        "The Inherent Limits of Pretrained LLMs": "relates instruction-tuned to base models' in-context performance; about limits of capability, not how in-context learning works",
        "Lexinvariant Language Models": "observes in-context deciphering as a property of its token-identity-free models",
    }),
    "res-074": ([r"\bembedding models?\b", r"text embeddings?", r"embedder", r"sentence (and document )?(encoder|embedding)s?",
                 r"dense passage", r"representation models?"], {
        "Starbucks": "2D Matryoshka training of BERT-size embedding models, not LLMs",
        "Fast, Effective, and Self-Supervised": "Mirror-BERT: masked LMs (BERT, RoBERTa) as sentence encoders, not LLMs",
        "From Word Vectors to Multimodal Embeddings": "review of embeddings from word vectors to BERT/GPT, not LLMs used as embedders",
    }),
    "res-075": ([r"graph", r"\bGNN"], {
        "Does Pre-trained Language Model Actually Infer": "knowledge graph completion by PLMs; no graph neural network or text-attributed graph",
        "A Comprehensive Survey on Pretrained Foundation Models": "survey that covers graph learning among other modalities",
        "Large-Scale Chemical Language Representations": "compares with graph neural networks on molecules; no LLM-graph combination",
    }),
    "res-076": ([r"active learning", r"\bactive\b", r"labell?ing", r"acquisition"], {
        "Pre-Trained Language Models for Interactive Decision-Making": "'active data gathering' by agents relabelling their own failures, not choosing samples to label",
        "Learning with Less": "selects which LLM-pseudo-labelled samples to distil from, not which to have labelled",
    }),
    "res-077": ([r"self-train", r"pseudo", r"semi-supervised"], {
        "Learning with Less": "pseudo-labels come from a separate LLM teacher: distillation, not self-training",
        "AfroLM": "self-active learning (semi-supervised sample selection), no pseudo-labels",
        "GeMQuAD": "semi-supervised filtering of LLM-generated QA data",
    }),
    "res-078": ([r"spars", r"prun"], {
        "Adapt-Pruner": "interleaves pruning with training, but starts from already pretrained LLMs",
        "MaskLLM": "learns N:M masks for already pretrained LLMs with frozen weights",
        "DSEE": "sparsity during fine-tuning",
        "PAT: Pruning-Aware Tuning": "pruning during fine-tuning",
    }),
    "res-079": ([r"tokeniz", r"\bbyte", r"character-level", r"subword", r"sub-word"], {
        "Flexibly Scaling Large Language Models Contexts": "compresses token embeddings to extend the context; segmentation unchanged",
        "Romanization-based": "transliterates the input; a tokenizer trained on romanized text is one variant",
        "Revisiting Pre-trained Language Models and their Evaluation for Arabic": "Char-JABER adds character-level information to a subword model",
        "An Empirical Comparison of Vocabulary Expansion": "extends a subword vocabulary (dev-038's topic)",
        "OFA: A Framework": "extends a subword vocabulary (dev-038's topic)",
        "WECHSEL": "replaces the subword tokenizer by another subword tokenizer (dev-038's topic)",
    }),
    "res-080": ([r"vision-language", r"vision language", r"\bVLMs?\b", r"prompt tuning", r"image-text", r"V\+L", r"vision-and-language"], {
        "AIM: Let Any Multi-modal": "makes multi-modal in-context demonstrations cheaper for a frozen MLLM; not adaptation from labels",
        "UNITER": "image-text pre-training, not adaptation",
    }),
    "res-081": ([r"RLHF", r"human feedback", r"preference", r"\bDPO\b"], {
        "Multi-modal preference alignment": "DPO for a vision-language model, English only",
        "Pedagogical Alignment": "RLHF for tutoring behaviour, not other languages",
    }),
    "res-082": ([r"educat", r"pedagog", r"student", r"learners?\b", r"tutor", r"school"], {
        "Can LLMs Learn by Teaching?": "education-inspired training of LLMs, not an application in education",
        "Aligning Teacher with Student Preferences": "'responsive teaching' as the inspiration for a distillation method",
    }),
}

# off-topic id -> [(pattern, {paper that matches: why it is not about the subject})]
OFF_TOPIC: dict[str, list[tuple[str, dict[str, str]]]] = {
    "res-091": [(p, {}) for p in (r"espresso", r"descal", r"coffee", r"limescale", r"\bvinegar")],
    "res-092": [(r"learn(ing)? spanish", {}), (r"duolingo", {}), (r"conjugat", {}),
                (r"spanish", {"GeMQuAD": "Spanish is one language of its question-answering data (MLQA)",
                              "Improving Bilingual Capabilities": "grades science explanations by English/Spanish/Spanglish-writing students"}),
                (r"second-language|\bL2 learn", {"Phonological Level wav2vec2": "detects mispronunciations of English learners",
                                                  "A Benchmark for Learning to Translate": "likens its task to L2 learning"})],
    "res-093": [(r"\btax(es)?\b", {"Multi-modal preference alignment": "'alignment tax'"}),
                (r"freelanc", {}), (r"\birs\b", {}), (r"deduct", {})],
    "res-094": [(p, {}) for p in (r"\bcars?\b", r"\bbrak(e|es|ing)\b", r"mechanic", r"grinding")],
    "res-095": [(p, {}) for p in (r"pupp(y|ies)", r"\bdogs?\b", r"\bpets\b", r"veterinar")],
    "res-096": [(p, {}) for p in (r"houseplant", r"\bcats?\b", r"\bplants?\b", r"toxic to")],
    "res-097": [(p, {}) for p in (r"passport", r"\bvisa\b", r"embassy", r"\btrip\b")],
    "res-098": [(p, {}) for p in (r"flights?\b", r"airfare", r"airline", r"japan", r"\bhotels?\b")],
    "res-099": [(p, {}) for p in (r"mou?ld\b", r"bathroom", r"bleach")],
    "res-100": [(p, {}) for p in (r"marathon", r"\bjog", r"\brunning\b")],
    "res-101": [(r"\bwine\b", {}), (r"\bstains?\b", {}), (r"carpet", {}),
                (r"laundry", {"Talking Heads": "its synthetic 'Laundry List' recall task"})],
    "res-102": [(p, {}) for p in (r"faucet", r"plumb", r"dripping", r"\bsink\b", r"\bkitchen")],
    "res-103": [(p, {}) for p in (r"\bsleep", r"toddler", r"\bnap\b", r"two-year-old")],
    "res-104": [(p, {}) for p in (r"jump-start", r"batter(y|ies)", r"\bcars?\b")],
}

# near-miss id -> ("paper", [papers], [patterns that must not match them]) or
#                 ("none", [], [pattern groups: no paper may match every group])
NEAR_MISS: dict[str, tuple[str, list[str], list[str]]] = {
    "res-086": ("none", [], [r"unlearn", r"code (generation|models?|llms?|completion)|programming language|software|source code|\bapis?\b"]),
    "res-087": ("paper", ["Continual Pre-Training of Large Language Models: How to (re)warm"], [r"batch"]),
    "res-088": ("paper", ["Large-Scale Chemical Language Representations"],
                [r"gpu", r"a100", r"v100", r"tpu", r"\bnodes?\b", r"hours?", r"\bdays?\b", r"accelerator", r"cluster"]),
    "res-089": ("paper", ["SLTrain"], [r"learning rate", r"\blr\b", r"step size", r"warm-?up"]),
    "res-090": ("none", [], [r"speech|spoken", r"rlhf|human feedback|preference|reward"]),
}


def load_library() -> dict[str, str]:
    entries: list[tuple[str, str]] = []
    for path in sorted(DATA.glob("*.txt")):
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines()]
        lines = [ln for ln in lines if ln and ln.casefold() not in BOILERPLATE and not DATE.match(ln)]
        if len(lines) % 2:
            raise SystemExit(f"{path.name}: odd number of title/abstract lines")
        entries += [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]
    papers: dict[str, str] = {}
    for title, abstract in entries:
        if papers.setdefault(title, abstract) != abstract:
            raise SystemExit(f"{title!r} has two different abstracts")
    if (len(entries), len(papers)) != (319, 241):
        raise SystemExit(f"expected 319 entries and 241 papers, found {len(entries)} and {len(papers)}")
    return {t: a.replace("\\%", "%") for t, a in papers.items()}


_SUFFIXES = ("izations", "ization", "ational", "ations", "ation", "ments", "ment", "ities", "ity", "ings",
             "ing", "ness", "ables", "able", "ably", "ies", "ied", "ers", "er", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def words(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS}


class Checker:
    """The library as the checks read it, and what they found: ``failures`` (exit status 1) and ``notes`` (``-v``)."""

    def __init__(self, library: dict[str, str]):
        self.library = library
        self.titles = list(library)
        self.texts = {t: (t + "\n" + a) for t, a in library.items()}
        self.df: dict[str, int] = {}
        for text in self.texts.values():
            for w in words(text):
                self.df[w] = self.df.get(w, 0) + 1
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, qid: str, msg: str) -> None:
        self.failures.append(f"{qid}: {msg}")

    def hits(self, pattern: str) -> list[str]:
        rx = re.compile(pattern, re.I)
        return [t for t in self.titles if rx.search(self.texts[t])]

    def resolve(self, table: str, notes_by_prefix: dict[str, str]) -> dict[str, str]:
        """The tables name papers by a title prefix; each must match exactly one title."""
        out = {}
        for prefix, note in notes_by_prefix.items():
            found = [t for t in self.titles if t.startswith(prefix)]
            if len(found) != 1:
                self.failures.append(f"{table}: {prefix!r} matches {len(found)} titles")
            else:
                out[found[0]] = note
        return out

    # -- one question ------------------------------------------------------------------

    def check(self, q: dict) -> str | None:
        """Check one question; returns its kind for the counts (None when its keys are wrong)."""
        qid = q.get("id", "?")
        expected = KEYS + (["unanswerable_kind"] if q.get("answerable") is False else [])
        if list(q) != expected:
            self.fail(qid, f"keys {list(q)} != {expected}")
            return None
        if q["type"] not in TYPES:
            self.fail(qid, f"unknown type {q['type']}")
        if (q["type"] == "unanswerable") == q["answerable"]:
            self.fail(qid, "answerable must be false exactly for type unanswerable")
        for t in q["gold_titles"]:
            if self.titles.count(t) != 1:
                self.fail(qid, f"gold title not in the library: {t!r}")
        gold = [t for t in q["gold_titles"] if t in self.library]
        if q["answerable"]:
            self.check_answerable(q, gold)
            return q["type"]
        if gold or q["key_facts"]:
            self.fail(qid, "unanswerable questions have no gold titles or key facts")
        if q["unanswerable_kind"] == "off-topic":
            self.check_off_topic(qid)
        elif q["unanswerable_kind"] == "near-miss":
            self.check_near_miss(qid)
        else:
            self.fail(qid, f"unknown unanswerable_kind {q['unanswerable_kind']!r}")
        return f"unanswerable/{q['unanswerable_kind']}"

    def check_off_topic(self, qid: str) -> None:
        if qid not in OFF_TOPIC:
            self.fail(qid, "no off-topic patterns recorded")
        for pattern, allowed in OFF_TOPIC.get(qid, []):
            allowed = self.resolve(qid, allowed)
            for t in self.hits(pattern):
                if t in allowed:
                    self.notes.append(f"{qid}: /{pattern}/ matches {t[:60]!r}: {allowed[t]}")
                else:
                    self.fail(qid, f"/{pattern}/ matches {t!r}")

    def check_near_miss(self, qid: str) -> None:
        if qid not in NEAR_MISS:
            self.fail(qid, "no near-miss patterns recorded")
            return
        mode, papers, patterns = NEAR_MISS[qid]
        papers = list(self.resolve(qid, dict.fromkeys(papers, "")))
        if mode == "paper":
            for t in papers:
                for pattern in patterns:
                    if re.search(pattern, self.texts[t], re.I):
                        self.fail(qid, f"/{pattern}/ matches the named paper {t[:60]!r}")
            return
        both = set(self.titles)
        for pattern in patterns:
            group = set(self.hits(pattern))
            self.notes.append(f"{qid}: /{pattern}/ matches {len(group)} papers")
            both &= group
        if both:
            self.fail(qid, f"papers match every group: {sorted(both)}")

    def check_answerable(self, q: dict, gold: list[str]) -> None:
        qid = q["id"]
        if not gold:
            self.fail(qid, "answerable question without gold titles")
        if not q["key_facts"]:
            self.fail(qid, "answerable question without key facts")
        gold_text = " \n ".join(t + "\n" + self.library[t] for t in gold).lower()
        for fact in q["key_facts"]:
            if not 1 <= len(fact.split()) <= 5:
                self.fail(qid, f"key fact not 1-5 words: {fact!r}")
            if fact.lower() not in gold_text:
                self.fail(qid, f"key fact not verbatim in a gold title or abstract: {fact!r}")
        if q["type"] == "paraphrase":
            self.check_paraphrase(q, gold, gold_text)
        elif q["type"] == "acronym":
            self.check_acronym(q, gold)
        elif q["type"] == "topic":
            self.check_topic(qid, gold)
        elif q["type"] == "compare" and len(gold) != 2:
            self.fail(qid, "a compare question has exactly two gold papers")

    def check_paraphrase(self, q: dict, gold: list[str], gold_text: str) -> None:
        qid, qwords = q["id"], words(q["question"])
        rare = sorted(w for w in qwords & words(gold_text) if self.df.get(w, 0) <= RARE_MAX_DF)
        title_overlap = sorted(qwords & words(" ".join(gold)))
        not_generic = [w for w in title_overlap if self.df.get(w, 0) < GENERIC_MIN_DF]
        if rare:
            self.fail(qid, f"shares rare words with its gold paper: {rare}")
        if not_generic:
            self.fail(qid, f"shares non-generic title words: {not_generic}")
        self.notes.append(f"{qid}: title overlap {[(w, self.df.get(w, 0)) for w in title_overlap]}; "
                          f"rarest shared abstract words "
                          f"{sorted(((self.df.get(w, 0), w) for w in qwords & words(gold_text)))[:4]}")

    def check_acronym(self, q: dict, gold: list[str]) -> None:
        qid = q["id"]
        if qid not in ACRONYMS:
            self.fail(qid, "no acronym pattern recorded")
            return
        pattern, others = ACRONYMS[qid]
        others = self.resolve(qid, others)
        if not re.search(pattern, q["question"], re.I):
            self.fail(qid, f"/{pattern}/ not in the question")
        for t in gold:
            if not re.search(pattern, self.texts[t], re.I):
                self.fail(qid, f"/{pattern}/ not in gold {t[:60]!r}")
        for t in self.hits(pattern):
            if t not in gold:
                if t in others:
                    self.notes.append(f"{qid}: /{pattern}/ also in {t[:60]!r}: {others[t]}")
                else:
                    self.fail(qid, f"/{pattern}/ also in {t!r}, not recorded")

    def check_topic(self, qid: str, gold: list[str]) -> None:
        if qid not in TOPICS:
            self.fail(qid, "no topic keywords recorded")
            return
        keywords, left_out = TOPICS[qid]
        left_out = self.resolve(qid, left_out)
        hit = {t for k in keywords for t in self.hits(k)}
        for t in gold:
            if t not in hit:
                self.fail(qid, f"gold paper matches no keyword: {t[:60]!r}")
        for t in left_out:
            if t not in hit:
                self.fail(qid, f"left-out paper matches no keyword: {t[:60]!r}")
            if t in gold:
                self.fail(qid, f"paper both gold and left out: {t[:60]!r}")
        other = sorted(hit - set(gold) - set(left_out))
        self.notes.append(f"{qid}: {len(hit)} keyword hits = {len(gold)} gold + {len(left_out)} borderline left out"
                          f" + {len(other)} others: {[t[:40] for t in other]}")


def main(verbose: bool = False) -> int:
    checker = Checker(load_library())
    rows = []
    for n, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            checker.failures.append(f"line {n}: not JSON ({e})")
    if [q.get("id") for q in rows] != [f"res-{i:03d}" for i in range(1, len(rows) + 1)]:
        checker.failures.append("ids are not res-001.. in order")
    counts: dict[str, int] = {}
    for q in rows:
        kind = checker.check(q)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    print(f"{len(rows)} questions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if verbose:
        print("\n".join(checker.notes))
    print(f"{len(checker.failures)} failures")
    for f in checker.failures:
        print("  FAIL", f)
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(verbose="-v" in sys.argv[1:]))
