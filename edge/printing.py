"""How catdog-edge prints results: a text table, JSON lines or CSV, one line per photo as it comes.

Labels come from the model file and paths from disk, so neither is trusted: the table and the error lines
show control characters escaped (catdog.edge.safe_text.visible), CSV cells also lose their formula meaning
(csv_cell), and JSON stays exact but ASCII, so any path, even one that is not UTF-8, is one line.
"""

from __future__ import annotations

import json
import sys
from enum import Enum

import click

from .classify import Failure, Prediction
from .safe_text import csv_cell, visible


class OutputFormat(str, Enum):
    """How results are printed."""

    text = "text"
    json = "json"
    csv = "csv"


class ResultPrinter:
    """Prints predictions and failures in one output format, flushing each line as it comes."""

    def __init__(self, format: OutputFormat, labels: tuple[str, ...], top_k: int, presence: bool = False):
        """presence: the model's presence score is in use (csv gains the columns "present" and "presence")."""
        self.format = format
        self.labels = labels
        self.presence = presence
        self.top_k = min(top_k, len(labels))
        if format is OutputFormat.csv:
            import csv

            self.csv = csv.writer(sys.stdout, lineterminator="\n")
        else:
            self.csv = None
        if self.csv:
            extra = ["present", "presence"] if presence else []
            self.csv.writerow(["path", "label", "confidence", *[csv_cell(f"score_{label}") for label in labels], *extra,
                               "ms", "error"])
            sys.stdout.flush()

    def prediction(self, p: Prediction) -> None:
        """Print one photo's answer."""
        if self.format is OutputFormat.json:
            record = p.to_dict()
            if self.top_k > 1:
                record["top_k"] = [{"label": label, "score": round(score, 6)} for label, score in p.top(self.top_k)]
            click.echo(json.dumps(record, ensure_ascii=True))
        elif self.csv:
            extra = [str(p.present).lower(), f"{p.presence:.6f}"] if self.presence else []
            self.csv.writerow([csv_cell(p.path), csv_cell(p.label), f"{p.confidence:.6f}",
                               *[f"{p.scores[l]:.6f}" for l in self.labels], *extra, f"{p.ms:.3f}", ""])
            sys.stdout.flush()
        else:
            best = "  ".join(f"{visible(label)} {score:.3f}" for label, score in p.top(max(self.top_k, 2)))
            if p.presence is not None:
                best += f"  presence {p.presence:.3f}"
            click.echo(f"{visible(p.label):<8} {p.confidence:6.3f}  {p.ms:7.1f} ms  {visible(p.path)}  [{best}]")

    def failure(self, f: Failure) -> None:
        """Print why one photo (or input) gave no answer: a record in json and csv, and one line on stderr in text and csv."""
        if self.format is OutputFormat.json:
            click.echo(json.dumps(f.to_dict(), ensure_ascii=True))
        elif self.csv:
            self.csv.writerow([csv_cell(f.path), "", "", *["" for _ in self.labels], *([""] * 2 * self.presence), "",
                               csv_cell(f.error)])
            sys.stdout.flush()
            click.echo(f"error: {visible(f.error)}", err=True)
        else:
            click.echo(f"error: {visible(f.error)}", err=True)
