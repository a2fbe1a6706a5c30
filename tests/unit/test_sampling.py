"""k samples per problem: pass@k, maj@k, the bootstrap and McNemar against hand-computed values; the config's
sampling keys; checkpoints per (problem, sample); the leaderboard's k > 1 columns and pairwise comparisons."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.contract import (
    AnswerRecord,
    ModelConfig,
    Problem,
    Sampling,
    SeriesScore,
    Timeouts,
    Transport,
    VllmSettings,
    with_samples,
)
from orchestrator.datasets import REGISTRY
from orchestrator.errors import ConfigError
from orchestrator.hub.prefetch import answered_models
from orchestrator.job import DatasetRun
from orchestrator.leaderboard import aggregate, pairwise, render_html, render_json, render_markdown
from orchestrator.leaderboard.compare import compare
from orchestrator.leaderboard.stats import (
    Resampler,
    bootstrap_mean,
    mcnemar_p,
    paired_bootstrap,
    paired_wald,
    pass_at_k,
)
from orchestrator.prompts import prompt_fingerprint
from orchestrator.ray.node import ProxyStore
from orchestrator.results import SeriesStore, missing_answers, missing_in, settings_hash, settings_payload
from orchestrator.results.samples import grader_equivalence, majority, outcomes
from orchestrator.scheduling.plan import plan
from orchestrator.serving.launch import CPU_SEEDED_ARGS

H = "a" * 16


# ---------------------------------------------------------------------------------------------------- pass@k
@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (4, 0, 1, 0.0),
        (4, 4, 4, 1.0),
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (4, 1, 4, 1.0),
        (8, 5, 4, 1.0),  # n - c < k: always a correct one
    ],
)
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_1_is_the_share_correct_and_bad_arguments_are_refused() -> None:
    assert all(pass_at_k(7, c, 1) == pytest.approx(c / 7) for c in range(8))
    for bad in ((4, 5, 1), (4, 1, 5), (4, 1, 0)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


# ---------------------------------------------------------------------------------------------------- maj@k
def ans(extracted: str, verdict: str, sample: int = 0, pid: str = "p") -> AnswerRecord:
    return AnswerRecord(
        id=pid,
        dataset="ds",
        model="m",
        task="t",
        reference="1/2",
        extracted=extracted,
        verdict=verdict,
        sample=sample,
        settings_hash=H,
    )


class Counting:
    """An equivalence that counts its calls: answers are the same when their float values are."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, a: str, b: str, domain: str, tolerance: float | None) -> bool:
        self.calls += 1
        return eval(a) == eval(b)  # test data only: "1/2", "0.5", "3"


@pytest.mark.parametrize(
    "answers,expected",
    [
        ([("1/2", "correct"), ("0.5", "correct"), ("3", "incorrect"), ("4", "incorrect")], 1.0),  # 2 vs 1, 1
        ([("1/2", "correct"), ("3", "incorrect"), ("3.0", "incorrect"), ("", "unparsed")], 0.0),  # 3 == 3.0 wins 2:1
        ([("1/2", "correct"), ("0.5", "correct"), ("3", "incorrect"), ("6/2", "incorrect")], 0.5),  # a 2:2 tie
        ([("1/2", "correct"), ("3", "incorrect"), ("4", "incorrect"), ("5", "incorrect")], 0.25),  # four-way tie
        ([("", "unparsed"), ("", "timeout"), ("1/2", "correct"), ("", "unparsed")], 1.0),  # only answers vote
        ([("3", "incorrect"), ("4", "incorrect")], 0.0),
    ],
)
def test_majority_clusters_by_equivalence_not_by_string(answers, expected) -> None:
    records = [ans(e, v, i) for i, (e, v) in enumerate(answers)]
    assert majority(records, Counting()) == expected


def test_a_clear_correct_majority_needs_no_equivalence_check() -> None:
    same = Counting()
    records = [ans("1/2", "correct", 0), ans("0.5", "correct", 1), ans("0.50", "correct", 2), ans("7", "incorrect", 3)]
    assert majority(records, same) == 1.0 and same.calls == 0


def test_the_grader_equivalence_sees_through_notation() -> None:
    assert grader_equivalence("\\frac{1}{2}", "0.5", "math", None)
    assert not grader_equivalence("3", "0.5", "math", None)


def test_outcomes_count_the_first_k_samples_of_problems_with_all_k() -> None:
    recs = [ans("1/2", "correct", i % 4, pid=f"p{i // 4}") for i in range(8)] + [ans("3", "incorrect", 0, "p2")]
    recs += [ans("3", "incorrect", 5, "p0")]  # a sample beyond k = 4: ignored
    got = outcomes(recs, 4, Counting())
    assert [(o.id, o.samples, o.correct, o.majority) for o in got] == [("p0", 4, 4, 1.0), ("p1", 4, 4, 1.0)]
    assert [(o.id, o.correct) for o in outcomes(recs, 2, Counting())] == [("p0", 2), ("p1", 2)]


# ---------------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_of_constant_values_is_that_value_and_is_seeded() -> None:
    assert bootstrap_mean([0.5] * 10) == (0.5, 0.5)
    values = [0, 1, 1, 0, 1, 0.25, 0.75, 1, 0, 1]
    assert bootstrap_mean(values) == bootstrap_mean(values)  # the same seed, the same interval
    assert bootstrap_mean(values, seed=1) != bootstrap_mean(values, seed=2)


def test_bootstrap_of_three_problems_matches_the_exact_resampling_distribution() -> None:
    # values 0, 0, 1: the mean of 3 draws is j/3 with probability C(3,j) (1/3)^j (2/3)^(3-j):
    # P(0) = 8/27 = 0.296, P(1/3) = 12/27, P(2/3) = 6/27, P(1) = 1/27 = 0.037. So the 2.5% quantile is 0 and the
    # 97.5% quantile is 1 (P(mean <= 2/3) = 26/27 = 0.963 < 0.975); the 80% interval's are 0 and 2/3.
    assert bootstrap_mean([0, 0, 1], rounds=20000) == (0.0, 1.0)
    assert bootstrap_mean([0, 0, 1], rounds=20000, level=0.8) == pytest.approx((0.0, 2 / 3))


def test_bootstrap_interval_matches_the_normal_approximation_for_many_problems() -> None:
    values = [1.0] * 120 + [0.0] * 80  # p = 0.6, se = sqrt(0.24 / 200) = 0.0346
    low, high = bootstrap_mean(values)
    assert low == pytest.approx(0.6 - 1.96 * math.sqrt(0.24 / 200), abs=0.01)
    assert high == pytest.approx(0.6 + 1.96 * math.sqrt(0.24 / 200), abs=0.01)


def test_paired_bootstrap_sees_a_consistent_small_difference_that_unpaired_intervals_miss() -> None:
    b = [1.0] * 100 + [0.0] * 100
    a = [1.0] * 110 + [0.0] * 90  # a = b plus 10 problems more: never worse
    low, high = paired_bootstrap(a, b)
    assert 0 < low < 0.05 < high < 0.09
    a_low, _ = bootstrap_mean(a)
    _, b_high = bootstrap_mean(b)
    assert a_low < b_high  # the two intervals overlap, the paired one excludes 0


@pytest.mark.parametrize(
    "only_a,only_b,expected",
    [
        (0, 0, 1.0),
        (5, 0, 2 / 32),
        (6, 0, 2 / 64),
        (3, 3, 1.0),
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # two-sided exact binomial: 2 * P(X <= 2), X ~ Bin(10, 1/2)
    ],
)
def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs(only_a: int, only_b: int, expected: float) -> None:
    assert mcnemar_p(only_a, only_b) == pytest.approx(expected)
    assert mcnemar_p(only_b, only_a) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------------- config
def write(tmp_path: Path, extra: str, model_extra: str = "") -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [m]
        m:
          model_name: m
          endpoints: [{{api_base: "http://127.0.0.1:9/v1"}}]
          {model_extra}
        """)
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    return path


def test_samples_top_p_and_seed_are_read_top_level_or_per_model(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "samples: 4\ntemperature: 0.6\ntop_p: 0.95\nseed: 7\n"), env={})
    assert cfg.models[0].sampling == Sampling(temperature=0.6, top_p=0.95, seed=7)
    assert (cfg.models[0].samples, cfg.models[0].parallel) == (4, 4)
    cfg = load_config(write(tmp_path, "samples: 4\ntemperature: 0.6\n", "samples: 8"), env={})
    assert cfg.models[0].samples == 8 and cfg.models[0].sampling.seed is None
    assert load_config(write(tmp_path, ""), env={}).models[0].samples == 1


@pytest.mark.parametrize(
    "extra,fragment",
    [
        ("samples: 0\n", r"samples: 0 is not a number of samples; use 1"),
        ("samples: -3\n", r"samples: -3 is not a number of samples"),
        ("samples: two\n", r"samples: expected an integer"),
        ("seed: 1.5\n", r"seed: expected an integer seed, got 1.5; write a whole number"),
        ("seed: abc\n", r"seed: expected an integer seed, got 'abc'"),
        ("seed: true\n", r"seed: expected an integer seed"),
        ("top_p: 1.5\n", r"top_p: 1.5 is out of range; use a probability mass in \(0, 1\]"),
    ],
)
def test_bad_sampling_values_are_one_line_config_errors(tmp_path: Path, extra: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(write(tmp_path, extra), env={})


def test_cli_exits_2_with_one_line_for_samples_0(tmp_path: Path) -> None:
    path = write(tmp_path, "samples: 0\n")
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--results-dir", str(tmp_path / "r")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "samples" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_greedy_samples_warn_that_they_will_be_identical(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestrator.config"):
        load_config(write(tmp_path, "samples: 4\n"), env={})
    assert any("identical" in r.getMessage() and "temperature" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orchestrator.config"):
        load_config(write(tmp_path, "samples: 4\ntemperature: 0.7\n"), env={})
    assert not caplog.records


def test_samples_never_change_the_settings_hash_and_unset_top_p_seed_keep_old_hashes() -> None:
    def model(samples: int = 1, **kw) -> ModelConfig:
        return ModelConfig(
            key="k", model_name="x", sampling=Sampling(**kw), vllm=VllmSettings(model="/m"), samples=samples
        )

    base = settings_hash(model(temperature=0.7), "ds", "v", "fp")
    assert settings_hash(model(samples=8, temperature=0.7), "ds", "v", "fp") == base
    assert "seed" not in settings_payload(model(), "ds", "v", "fp") and "top_p" not in settings_payload(
        model(), "ds", "v", "fp"
    )
    assert (
        len(
            {
                base,
                settings_hash(model(temperature=0.7, seed=1), "ds", "v", "fp"),
                settings_hash(model(temperature=0.7, top_p=0.9), "ds", "v", "fp"),
            }
        )
        == 3
    )


def test_every_sampling_field_changes_the_settings_hash_and_transport_or_concurrency_never_does() -> None:
    plain = ModelConfig(key="k", model_name="x", sampling=Sampling(), vllm=VllmSettings(model="/m"))
    base = settings_hash(plain, "ds", "v", "fp")
    changed = {"temperature": 0.5, "max_tokens": 99, "system_prompt": "Думай.", "top_p": 0.5, "seed": 3}
    assert set(changed) == {f.name for f in dataclasses.fields(Sampling)}  # a new field must be added here too
    for name, value in changed.items():
        other = dataclasses.replace(plain, sampling=dataclasses.replace(plain.sampling, **{name: value}))
        assert settings_hash(other, "ds", "v", "fp") != base, name
    travel = Transport(timeouts=Timeouts.within(5), max_retries=0, request_delay=2.0, backoff_base=3.0)
    same = dataclasses.replace(plain, transport=travel, parallel=32, samples=4)
    assert settings_hash(same, "ds", "v", "fp") == base


PINNED_SETTINGS = {  # the hashes of series on users' disks: a change here rotates their results into history
    "api_defaults": (
        """
        model_list: [m]
        m: {model_name: gpt-4o, endpoints: [{api_base: "http://127.0.0.1:9/v1", api_key: sk-x}]}
        """,
        ("f7585a2b3ba898c3", "df54a318fd4dc48b"),
    ),
    "api_everything": (
        """
        model_list: [m]
        temperature: 0.6
        max_tokens: 512
        system_prompt: "Реши задачу."
        request_timeout: 30
        max_retries: 1
        request_delay: 0.5
        parallel: 8
        samples: 4
        top_p: 0.95
        seed: 7
        m: {model_name: gpt-4o, endpoints: [{api_base: "http://127.0.0.1:9/v1", api_key: sk-x}]}
        """,
        ("2e58e7f54a6a2712", "8b5c555a2a316fbd"),
    ),
    "managed_args": (
        """
        model_list: [m]
        temperature: 0.3
        m:
          model_name: tiny
          parallel: 16
          seed: 0
          vllm:
            model: acme/tiny
            revision: v2
            max_model_len: 4096
            args: ["--dtype", "bfloat16", "--max-num-seqs", "8"]
        """,
        ("3928afd2aefdcf19", "53d3967e83f595c5"),
    ),
    "gigachat": (
        """
        model_list: [g]
        g:
          model_name: GigaChat
          api_type: gigachat
          endpoints: [{credentials: c, profanity_check: false, timeout: 90}]
        """,
        ("94828d9f033be6a4", "220d50e29baeb6e7"),
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED_SETTINGS))
def test_the_settings_hash_of_a_config_is_the_one_its_series_on_disk_were_written_under(
    tmp_path: Path, name: str
) -> None:
    text, expected = PINNED_SETTINGS[name]
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    model = load_config(path, env={}).models[0]
    got = (settings_hash(model, "ds", "v1", "fp"), settings_hash(model, "other", "v2", "fp2"))
    assert got == expected


def test_a_seeded_cpu_server_runs_without_chunked_prefill_a_gpu_one_unchanged() -> None:
    seeded = ModelConfig(key="k", model_name="x", sampling=Sampling(seed=1), vllm=VllmSettings(model="/m"))
    plain = ModelConfig(key="p", model_name="y", sampling=Sampling(), vllm=VllmSettings(model="/m"))
    cpu = {p.job.key: p.spec.args for p in plan([seeded, plain], [], [8001, 8002])}
    assert cpu == {"k": CPU_SEEDED_ARGS, "p": ()}
    gpu = plan([seeded], [0], [8001])
    assert gpu[0].spec.args == ()


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_a_series_is_complete_only_with_every_sample_of_every_problem_wherever_it_is_asked(tmp_path: Path) -> None:

    problems = [Problem(id=f"p{i}", dataset="sample-math", domain="math", task="t", reference="1") for i in range(3)]
    model = ModelConfig(key="m", model_name="m", sampling=Sampling(), vllm=VllmSettings(model="org/m"), samples=2)
    run = DatasetRun(spec=REGISTRY["sample-math"], problems=tuple(problems), version="v1")
    digest = settings_hash(model, "sample-math", "v1", prompt_fingerprint())
    store = SeriesStore(tmp_path, "m", "sample-math", digest, meta={"total": 3, "sampling": {"samples": 2}})

    def answer(key: str, error: str | None = None) -> None:
        pid, _, sample = key.partition("#")
        rec = AnswerRecord(
            id=pid, dataset="sample-math", model="m", task="t", reference="1", sample=int(sample or 0),
            settings_hash=digest, error=error,
        )  # fmt: skip
        assert store.append(rec)

    def asked_everywhere(samples: int) -> list[list[str]]:
        done = frozenset(r.key for r in store.records() if r.error is None)
        proxy = ProxyStore("m", "sample-math", digest, done, lambda event: None)
        found = [
            store.missing(problems, samples),
            proxy.missing(problems, samples),
            missing_in(tmp_path, "m", "sample-math", digest, problems, samples),
            missing_answers(problems, samples, done.__contains__),
        ]
        return [[p.key for p in todo] for todo in found]

    for key in ("p0", "p1", "p2", "p0#1"):  # 4 answers for 3 problems: more answers than problems, still partial
        answer(key)
    answer("p1#1", error="timeout")  # an error is no answer
    assert asked_everywhere(1) == [[]] * 4  # one sample each: complete
    assert asked_everywhere(2) == [["p1#1", "p2#1"]] * 4
    assert answered_models(tmp_path, [model], [run]) == set()
    for key in ("p1#1", "p2#1"):
        answer(key)
    assert asked_everywhere(2) == [[]] * 4 and asked_everywhere(3) == [["p0#2", "p1#2", "p2#2"]] * 4
    assert answered_models(tmp_path, [model], [run]) == {"m"}
    assert answered_models(tmp_path, [dataclasses.replace(model, samples=3)], [run]) == set()
    assert answered_models(tmp_path, [model], [run], fresh=True) == set()


def test_each_problem_sample_is_its_own_checkpoint_and_old_records_are_sample_0(tmp_path: Path) -> None:
    problems = [Problem(id=f"p{i}", dataset="ds", domain="math", task="t", reference="1") for i in range(2)]
    meta = {"total": 2, "sampling": {"samples": 3}}
    store = SeriesStore(tmp_path, "m", "ds", H, meta=meta)
    old_line = {
        "id": "p0",
        "dataset": "ds",
        "model": "m",
        "task": "t",
        "reference": "1",
        "verdict": "correct",
        "settings_hash": H,
    }  # written before samples existed: no sample field
    store.path.write_text(json.dumps(old_line) + "\n", encoding="utf-8")
    wanted = with_samples(problems, 3)
    assert [p.key for p in store.missing(wanted)] == ["p0#1", "p0#2", "p1", "p1#1", "p1#2"]
    for p in wanted[1:]:
        assert store.append(
            AnswerRecord(
                id=p.id,
                dataset="ds",
                model="m",
                task="t",
                reference="1",
                sample=p.sample,
                seed=10 + p.sample,
                verdict="correct" if p.sample else "incorrect",
                settings_hash=H,
            )
        )
    assert not store.append(
        AnswerRecord(id="p1", dataset="ds", model="m", task="t", reference="1", sample=2, settings_hash=H)
    )  # answered already: never twice
    assert store.missing(wanted) == []
    score = store.score()
    assert (score.samples, score.answered, score.correct, score.accuracy) == (3, 2, 5, 5 / 6)
    more = SeriesStore(tmp_path, "m", "ds", H, meta={"total": 2, "sampling": {"samples": 4}})
    assert [p.key for p in more.missing(with_samples(problems, 4))] == ["p0#3", "p1#3"]  # raising k: only new ones
    fewer = SeriesStore(tmp_path, "m", "ds", H, meta={"total": 2, "sampling": {"samples": 2}})
    assert (fewer.score().samples, fewer.score().correct) == (2, 3)  # lowering k: the first k
    text = fewer.write_markdown().read_text(encoding="utf-8")
    assert "2 samples per problem: answered 2/2 problems, correct 3 of 4 samples (avg@2 75.0%)" in text
    assert "`p1` sample 2 (seed 12)" in text


# ---------------------------------------------------------------------------------------------------- leaderboard
def series(model: str, per_problem: list[int], k: int, dataset: str = "russianmath") -> SeriesScore:
    from orchestrator.contract import ProblemOutcome

    outs = tuple(ProblemOutcome(f"q{i}", k, c, 1.0 if 2 * c > k else 0.0) for i, c in enumerate(per_problem))
    return SeriesScore(
        model=model,
        dataset=dataset,
        settings_hash=H,
        total=len(outs),
        answered=len(outs),
        correct=sum(per_problem),
        errors=0,
        prompt_tokens=0,
        completion_tokens=0,
        eval_seconds=1.0,
        samples=k,
        outcomes=outs,
    )


def test_k_above_1_shows_avg_pass_maj_and_k_with_a_bootstrap_interval() -> None:
    rows = aggregate([series("a", [4, 2, 0, 1], 4)], ["russianmath"])
    row = rows[0]
    assert row.combined == pytest.approx(7 / 16) and row.samples == 4
    assert row.pass_at_k == pytest.approx(3 / 4) and row.maj_at_k == pytest.approx(1 / 4)
    cell = row.cells["russianmath"]
    assert (row.ci_low, row.ci_high) == (cell.ci_low, cell.ci_high) and cell.ci_low < 7 / 16 < cell.ci_high
    assert (cell.ci_low, cell.ci_high) == pytest.approx(bootstrap_mean([1, 0.5, 0, 0.25]), abs=0.02)
    md = render_markdown(rows, ["russianmath"])
    assert "| k | pass@k | maj@k |" in md and "| 4 | 75.0% | 25.0% |" in md and "43.8%" in md
    one = render_markdown(aggregate([series("b", [1, 0, 1], 1)], ["russianmath"]), ["russianmath"])
    assert "pass@k" not in one and "| 66.7% |" in one  # k = 1: as before (Wilson, no extra columns)


def test_pairwise_differences_say_who_beats_whom_in_json_md_and_html() -> None:
    strong = series("strong", [4] * 30 + [0] * 10, 4)
    weak = series("weak", [4] * 10 + [0] * 30, 4)
    close = series("close", [4] * 29 + [0] * 11, 4)
    rows = aggregate([strong, weak, close], ["russianmath"])
    comps = pairwise(rows)
    assert {(c.a, c.b, c.winner) for c in comps} == {
        ("strong", "close", None),
        ("strong", "weak", "strong"),
        ("close", "weak", "close"),
    }
    data = json.loads(render_json(rows, ["russianmath"], comps))
    assert {r["model"]: r["beats"] for r in data["rows"]} == {"strong": ["weak"], "close": ["weak"], "weak": []}
    first = next(c for c in data["comparisons"] if c["b"] == "weak" and c["a"] == "strong")
    assert first["diff"] == pytest.approx(0.5) and first["method"] == "paired bootstrap" and first["ci95"][0] > 0
    md = render_markdown(rows, ["russianmath"], comps)
    assert "- **strong** beats weak with 95% confidence" in md and "- **weak** beats no model" in md
    html = render_html(rows, ["russianmath"], comps)
    assert "Which differences are real" in html and 'class="win"' in html and 'class="loss"' in html


def test_single_answer_models_are_compared_with_mcnemar_on_common_problems() -> None:
    a = series("a", [1] * 12 + [0] * 8, 1)
    b = series("b", [0] * 12 + [0] * 8, 1)
    rows = aggregate([a, b], ["russianmath"])
    c = compare(rows[0], rows[1], Resampler())
    assert c.method == "mcnemar" and c.p_value == pytest.approx(2 / 2**12) and c.winner == "a"
    assert c.diff == pytest.approx(0.6) and c.problems == 20
    half = 1.96 * math.sqrt(12 - 144 / 20) / 20  # paired Wald: b = 12, c = 0, n = 20
    assert (c.ci_low, c.ci_high) == pytest.approx((0.6 - half, 0.6 + half))


def test_paired_wald_over_two_datasets_is_the_mean_with_the_pooled_variance() -> None:
    low, high = paired_wald([(6, 2, 40), (3, 3, 20)])
    diff = (4 / 40 + 0 / 20) / 2
    var = ((8 - 16 / 40) / 1600 + (6 - 0) / 400) / 4
    assert (low, high) == pytest.approx((diff - 1.96 * math.sqrt(var), diff + 1.96 * math.sqrt(var)))
