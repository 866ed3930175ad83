"""Optional LLM-as-judge (off by default): a local model grades each answer against the gold answers,
and its agreement with the judge-free `accuracy` is reported as Cohen's kappa next to its scores
(metrics.json: arms.<arm>.judge_accuracy, arms.<arm>.judge_kappa).

    judge = Judge(LM.load("smollm2-135m-instruct", quantization="none"))
    rows = judge.grade(rows)        # adds judge_correct (0/1) and judge_p_yes to answerable rows

The verdict is read from log-likelihoods (' yes' vs ' no' after the grading prompt), not from sampled
text: deterministic, batched, and never unparseable. A judge is only as good as its kappa: a published
2x2 study found kappa = 0.45 and demoted its judge, so read the scores with the kappa beside them.
"""

from __future__ import annotations

import math

from evalsuite.metrics import row_scored_answer

GRADE = (
    "You grade answers to questions. Reply yes if the candidate answer means the same as one of the "
    "reference answers, otherwise no."
)


class Judge:
    def __init__(self, lm, batch_size: int = 16):
        self.lm = lm
        self.batch_size = batch_size

    def prompt(self, question: str, answers: list[str], candidate: str) -> str:
        body = (
            f"Question: {question}\nReference answers: {' | '.join(answers)}\n"
            f"Candidate answer: {candidate}\nIs the candidate answer correct?"
        )
        tok = self.lm.tokenizer
        if getattr(tok, "chat_template", None):
            msgs = [{"role": "system", "content": GRADE}, {"role": "user", "content": body}]
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return f"{GRADE}\n\n{body}\nVerdict:"

    def grade(self, rows: list[dict], desc: str | None = None) -> list[dict]:
        """Add `judge_correct` (1 when ' yes' is likelier than ' no') and `judge_p_yes` to answerable rows."""
        todo = [r for r in rows if not r["unanswerable"]]
        sep = "" if getattr(self.lm.tokenizer, "chat_template", None) else " "
        reqs = []
        for r in todo:
            p = self.prompt(r["question"], r["answers"], row_scored_answer(r))
            reqs += [(p, f"{sep}yes"), (p, f"{sep}no")]
        lls = self.lm.loglikelihood(reqs, batch_size=self.batch_size, desc=desc)
        for k, r in enumerate(todo):
            yes, no = lls[2 * k], lls[2 * k + 1]
            r["judge_correct"] = float(yes > no)
            r["judge_p_yes"] = round(1 / (1 + math.exp(no - yes)), 6)
        return rows
