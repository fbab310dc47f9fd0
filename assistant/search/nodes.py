"""The paper retriever as a llama-index ``BaseRetriever``: one ``NodeWithScore`` per paper.

``Searcher`` (retriever.py) does the searching and imports no llama-index, so
``assistant search`` starts fast; this module adapts it for llama-index code,
the project's query engine included::

    retriever = PaperRetriever(app.searcher, k=5)
    nodes = retriever.retrieve("negative preference optimization")
    nodes[0].node.metadata["title"], nodes[0].score

A node's text is the paper's abstract; its metadata holds the paper id, title,
authors, date, url, source file and the dense (cosine) and BM25 scores, and for a
full-text paper its best passages (``passages``: page, section, kind, text), its
stored PDF and page count, for llama-index code that reads them; and the ``Hit``
itself, which the project's own code reads (nothing is converted back). An LLM
reading a node sees only the title with the text.
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant.core.types import Hit
from assistant.search.retriever import MODES, Searcher


def hit_node(hit: Hit) -> NodeWithScore:
    """A search hit as a node: the abstract as text, the paper's facts and scores as metadata, and the Hit itself
    (``metadata["hit"]``): whoever reads the node back gets that Hit, never one rebuilt from flattened fields."""
    metadata = {"paper_id": hit.paper_id, "title": hit.title, "authors": ", ".join(hit.authors), "date": hit.date,
                "url": hit.url, "source": hit.source, "dense": hit.dense, "bm25": hit.bm25}
    if hit.passages or hit.pages:  # a full-text paper: its best passages with their pages, and its PDF
        metadata |= {"passages": [dict(p) for p in hit.passages], "pdf": hit.pdf, "pages": hit.pages}
    metadata["hit"] = hit
    node = TextNode(id_=hit.paper_id, text=hit.abstract, metadata=metadata,
                    excluded_llm_metadata_keys=[k for k in metadata if k != "title"],
                    excluded_embed_metadata_keys=list(metadata))
    return NodeWithScore(node=node, score=hit.score)


def node_hit(node: NodeWithScore) -> Hit:
    """The Hit a node stands for: the one it carries, or, for a node made elsewhere, one read from its metadata
    (it needs at least a paper_id or an id)."""
    md = node.node.metadata
    if isinstance(md.get("hit"), Hit):
        return md["hit"]
    return Hit(paper_id=md.get("paper_id") or node.node.node_id, title=md.get("title", ""),
               score=float(node.score or 0.0), abstract=node.node.get_content(), dense=md.get("dense"),
               bm25=md.get("bm25"), authors=[a for a in (md.get("authors") or "").split(", ") if a],
               date=md.get("date", ""), url=md.get("url", ""), source=md.get("source", ""),
               passages=list(md.get("passages") or []), pdf=md.get("pdf", ""), pages=int(md.get("pages") or 0))


class PaperRetriever(BaseRetriever):
    """Dense + BM25 search over a library's papers, fused, one node per paper, best first."""

    def __init__(self, searcher: Searcher, k: int = 8, mode: str = "hybrid"):
        super().__init__()
        if mode not in MODES:
            from assistant.core.errors import UserError

            raise UserError(f"unknown retriever {mode!r}: choose one of {', '.join(MODES)}")
        self.searcher, self.k, self.mode = searcher, k, mode

    def with_k(self, k: int) -> "PaperRetriever":
        """The same retriever returning ``k`` papers."""
        return self if k == self.k else PaperRetriever(self.searcher, k, self.mode)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [hit_node(h) for h in self.searcher.search(query_bundle.query_str, k=self.k, mode=self.mode)]
