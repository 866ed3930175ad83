"""The advisor's judge-free QA metrics as an `evaluate` metric module, loaded by path (works offline):

    import evaluate
    m = evaluate.load("/path/to/evalsuite/hf_metrics/advisor_qa")
    m.compute(predictions=["Paris"], references=[["Paris", "the city of Paris"]])
    # {'accuracy': 1.0, 'hallucination_rate': 0.0, 'false_abstention_rate': 0.0, ..., 'exact_match': 1.0, 'n': 1}

Each value is the mean over the examples (0..1, not the SQuAD script's 0..100) of the metric class of
the same name in evalsuite.metrics; an empty reference list marks an unanswerable question, which counts
towards the metrics that apply to unanswerable questions (`abstention_rate`, `fabrication_rate`,
`hallucination_rate`, `bare_citation_rate`) only. A prediction is scored as the evaluation scores an
arm's answer: citation markers ('[2]') are removed for the accuracy metrics and kept for
`bare_citation_rate` (an answer that is only a citation). (One import per line: evaluate's import check
reads this file line by line.)
"""

import datasets
import evaluate

from evalsuite.metrics import ANSWER_METRICS
from evalsuite.metrics import METRICS
from evalsuite.metrics import Sample
from evalsuite.metrics import scored_answer

NAMES = ANSWER_METRICS  # every metric scored from the answer and its references alone


class AdvisorQA(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="SQuAD v1.1 exact match and token F1, containment, judge-free accuracy, abstention and "
            "hallucination rates (rag-ft-advisor evalsuite.metrics).",
            citation="Rajpurkar et al. 2016, SQuAD: 100,000+ Questions for Machine Comprehension of Text.",
            inputs_description="predictions: list of answer strings; references: list of lists of gold answers "
            "(empty list = unanswerable question).",
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        metrics = {name: METRICS.get(name)() for name in NAMES}
        values = {name: [] for name in NAMES}
        for pred, refs in zip(predictions, references):
            sample = Sample("", list(refs), scored_answer(pred), unanswerable=not refs, raw_prediction=pred)
            for name, m in metrics.items():
                v = m.score(sample).value
                if v is not None:
                    values[name].append(v)
        out = {name: sum(v) / len(v) for name, v in values.items() if v}
        out["n"] = len(predictions)
        return out
