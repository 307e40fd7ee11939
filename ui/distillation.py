"""Distillation page helpers: the teacher's soft labels on a few test images (cached), and the
background job that trains the students and stores every one of them as a run."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from compression.data import Dataset
from compression.distillation import DistillConfig, StudentSpec, distill, entropy_bits, softened_probabilities
from compression.store import RunStore
from ui import cache

LABELED_CHOICES = (1000, 5000, 20000, None)  # None: every training image has its label


def gallery_indices(dataset: Dataset) -> list[int]:
    """The first test image of each class: one thumbnail per class."""
    labels = dataset.test.labels
    return [int((labels == c).nonzero()[0]) for c in range(dataset.num_classes) if (labels == c).any()]


@st.cache_data(max_entries=32, show_spinner=False)
def gallery_logits(teacher: str, dataset_name: str, device: str) -> list[list[float]]:
    """The teacher's logits for the gallery images (T = 1), computed once per teacher."""
    data = cache.model_dataset(teacher, device, dataset_name)  # the teacher's input contract
    x = data.normalize(data.test.images[gallery_indices(data)], device)
    with torch.inference_mode():
        return cache.model(teacher, device, dataset_name)(x).float().cpu().tolist()  # the shared model: read only


def soft_labels(logits: list[float], temperature: float) -> tuple[list[float], list[float], float, float]:
    """(probabilities at T = 1, at T, entropy at T = 1 in bits, entropy at T in bits)."""
    z = torch.tensor(logits)
    p1, pt = softened_probabilities(z, 1.0), softened_probabilities(z, temperature)
    return p1.tolist(), pt.tolist(), float(entropy_bits(p1)), float(entropy_bits(pt))


@dataclass(frozen=True)
class Request:
    teacher: str
    student: StudentSpec
    config: DistillConfig
    temperatures: tuple[float, ...] = ()
    alphas: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        sweep = (f", sweep T {', '.join(f'{t:g}' for t in self.temperatures)}" if self.temperatures else
                 f", sweep alpha {', '.join(f'{a:g}' for a in self.alphas)}" if self.alphas else "")
        return f"distill {self.teacher} -> {self.student.label}{sweep}"


def run_job(job, request: Request, data: Dataset, store: RunStore, device: str, executor=None,
            runtime: str = "eager") -> list[dict]:
    """Worker side: train (hard labels, then each distilled setting) on `executor` (ui.cluster's:
    COMPRESSION_CLUSTER's workers, else this process), each student stored once with its artifact
    file, and return the result dicts (each with `artifact_bytes`, the student's file: the page
    times it against the teacher on every runtime); latency timed on `runtime`. Stop ends after the
    running students, which are kept."""
    outcomes = distill([request.teacher], request.student, data, request.config,
                       temperatures=request.temperatures or None, alphas=request.alphas or None,
                       device=device, progress=job.progress, should_stop=job.should_stop, store=store,
                       executor=executor, runtime=runtime)
    return [{**outcome.result.to_dict(), "artifact_bytes": outcome.artifact} for outcome in outcomes]
