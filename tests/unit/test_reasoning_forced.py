"""The pure part of the forced budget: the continuation prompt, open thinking, token counts, answers in reasoning."""

from __future__ import annotations

from orchestrator.reasoning.forced import (
    TAIL_CHARS,
    BudgetedAnswer,
    Ending,
    ThinkTags,
    answer_like,
    closing_text,
    continuation_ids,
    find_last,
    reasoning_tail,
    reasoning_tokens,
    thinking_open,
)

S, E = [90], [91]  # <think>, </think>
LEAD = "\n\nОтвет:"


def test_the_continuation_is_the_rendered_prompt_what_was_generated_and_the_closing():
    assert continuation_ids([1, 2, *S], [5, 6, 7], [*E, 8, 9]) == [1, 2, 90, 5, 6, 7, 91, 8, 9]
    assert continuation_ids([1], [2]) == [1, 2]


def test_the_closing_text_is_the_end_tag_then_the_lead():
    assert closing_text(ThinkTags("<think>", "</think>"), LEAD) == "</think>\n\nОтвет:"
    assert closing_text(ThinkTags("<seed:think>", "</seed:think>"), "\nA:") == "</seed:think>\nA:"


def test_find_last_finds_multi_token_needles():
    assert find_last([1, 2, 3, 1, 2], [1, 2]) == 3
    assert find_last([1, 2, 3], [4]) == -1
    assert find_last([1, 2, 3], []) == -1


def test_thinking_is_open_when_its_last_start_comes_after_its_last_end():
    assert thinking_open([1, *S, 5], S, E)
    assert not thinking_open([1, *S, 5, *E, 6], S, E)
    assert thinking_open([*S, *E, *S, 3], S, E)
    assert not thinking_open([1, 2, 3], S, E)


def test_reasoning_opened_by_the_template_counts_up_to_the_end_tag_or_everything():
    prompt = [1, 2, *S, 7]
    assert reasoning_tokens(prompt, [3, 4, 5], S, E) == 3
    assert reasoning_tokens(prompt, [3, 4, *E, 6, 6], S, E) == 2


def test_reasoning_opened_by_the_model_counts_between_its_tags():
    assert reasoning_tokens([1, 2], [*S, 3, 4, 5, *E, 6], S, E) == 3
    assert reasoning_tokens([1, 2], [*S, 3, 4], S, E) == 2


def test_a_template_that_closed_an_empty_block_means_no_reasoning_tokens():
    assert reasoning_tokens([1, *S, *E, 2], [3, 4, 5], S, E) == 0


def test_an_end_tag_without_any_start_counts_what_precedes_it():
    assert reasoning_tokens([1, 2], [3, 4, *E, 5], S, E) == 2
    assert reasoning_tokens([1, 2], [3, 4, 5], S, E) == 0


def test_answer_like_finds_markers_and_boxes_but_not_plain_numbers():
    assert answer_like("Итак, x = 2.\nОтвет: 2")
    assert answer_like("so the result is \\boxed{42}")
    assert answer_like("**Answer:** 7")
    assert not answer_like("Let me compute 2 + 2 = 4 and check it again")


def test_the_reasoning_tail_is_the_last_part_from_a_paragraph_start():
    ending = "\n\nИтак, Ответ: 5"
    assert reasoning_tail("a" * (TAIL_CHARS * 2) + ending) == "a" * (TAIL_CHARS - len(ending)) + ending
    paragraph = "b" * (TAIL_CHARS - 100)
    assert reasoning_tail("a" * (TAIL_CHARS * 2) + "\n\n" + paragraph) == paragraph
    assert reasoning_tail("short\n\nОтвет: 1 ") == "short\n\nОтвет: 1"


def test_an_empty_content_with_an_answer_closing_the_reasoning_is_an_answer_in_reasoning():
    found = BudgetedAnswer(content="", reasoning="думаю...\nОтвет: 4", finish_reason="stop", reasoning_tokens=9,
                           answer_tokens=0)  # fmt: skip
    assert found.answer_in_reasoning and not found.truncated and not found.forced
    assert not BudgetedAnswer("Ответ: 4", "Ответ: 4", "stop", 3, 3).answer_in_reasoning
    assert not BudgetedAnswer("", "just thinking", "length", 9, 0).answer_in_reasoning


def test_truncated_is_the_last_request_stopping_at_a_limit_and_forced_is_the_ending():
    answer = BudgetedAnswer("Ответ: x", "r", "length", 10, 5, ending=Ending.FORCED, requests=2)
    assert answer.truncated and answer.forced and answer.completion_tokens == 15
