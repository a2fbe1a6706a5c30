"""Hand labels for real model answers in ../shared/upstream-data (eval-only: ids and labels only, no texts).

Files are relative to results_history/results/details; indices are positions in them. ``CORRECT`` holds the
answers whose final answer, read by a careful human, states the reference; ``INCORRECT`` the others (a wrong
answer, no final answer, a response cut off at the token limit, an API error). The sample holds every answer
whose final answer is not a plain integer, every response without an answer marker, every response with several
differing answer lines, every non-empty response the grader found no answer in, and random samples of the rest;
each was read by hand (the end of the response against the reference and, where needed, the task).
Labelled by the grader's author while building it, so not blind. Three labels (#35 of GigaChat-Max 20250410_000532,
gpt-4o 20250408_074210 and gpt-4o 20250408_115501: 172 cm for 1.72 m, the unit in the sentence before) were added
later, after the stated-unit rule changed their verdict; read by hand, also not blind.
"""
from __future__ import annotations

CORRECT: dict[str, list[int]] = {
    'GigaChat-2-Max/details_20250409_235721__blob_81432a1f02.json': [
        14, 34, 35, 58, 62, 67, 97, 149, 170
    ],
    'GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json': [
        16, 19, 21, 25, 32, 35, 58, 98, 136, 149, 151, 170
    ],
    'GigaChat-2/details_20250410_000342__blob_277d4cd51a.json': [
        19, 34, 58, 62, 100, 149
    ],
    'GigaChat-Max/details_20250410_000532__blob_679adcebb6.json': [
        10, 31, 32, 35, 62, 98, 105, 127, 149, 163, 187
    ],
    'gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json': [
        6, 20, 28, 32, 35, 43, 51, 58, 62, 66, 79, 84, 85, 97, 98, 104, 144, 149, 153
    ],
    'gpt-4o-mini/details_20250408_115501__blob_eaeb6c9734.json': [
        6, 15, 17, 35, 43, 58, 62, 98, 104, 139, 141, 142, 144, 149, 187
    ],
    'gpt-4o-mini/details_20250409_235721__blob_8376e25134.json': [
        15, 28, 32, 34, 35, 43, 58, 62, 77, 84, 97, 104, 105, 140, 144, 149, 161, 170, 171
    ],
    'gpt-4o/details_20250408_074210__blob_e9d5cad1dc.json': [
        0, 1, 19, 20, 30, 32, 34, 35, 58, 62, 77, 80, 98, 143, 148, 149, 170
    ],
    'gpt-4o/details_20250408_115501__blob_4a478c853b.json': [
        20, 31, 32, 34, 35, 58, 62, 75, 78, 83, 90, 96, 105, 149, 164, 166, 189
    ],
    'gpt-4o/details_20250409_235721__blob_9df4eb40dc.json': [
        20, 32, 34, 35, 40, 58, 62, 75, 96, 97, 136, 149, 163, 164, 187
    ],
    'o3-mini-2025-01-31/details_20250408_072911__blob_4936b120be.json': [
        3
    ],
    'o3-mini-2025-01-31/details_20250408_083654__blob_f614b65ebd.json': [
        14, 20, 32, 34, 35, 41, 42, 58, 60, 62, 82, 94, 143, 149, 163, 170
    ],
    'o3-mini-2025-01-31/details_20250408_121611__blob_4164f029a3.json': [
        13, 17, 20, 21, 28, 30, 32, 34, 35, 58, 60, 62, 98, 140, 143, 149, 163, 170, 187
    ],
}

INCORRECT: dict[str, list[int]] = {
    'GigaChat-2-Max/details_20250409_235721__blob_81432a1f02.json': [
        2, 7, 8, 11, 12, 20, 24, 32, 39, 42, 43, 44, 45, 52, 63, 75, 76, 98, 100, 112, 123, 131, 134, 140, 143, 145,
        158, 163, 166, 173, 175, 178, 179, 184
    ],
    'GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json': [
        12, 20, 34, 43, 53, 55, 70, 77, 86, 109, 127, 132, 135, 142, 143, 145, 147, 155, 163, 166, 171, 173, 178,
        186
    ],
    'GigaChat-2/details_20250410_000342__blob_277d4cd51a.json': [
        3, 7, 8, 12, 20, 32, 38, 39, 43, 50, 54, 57, 61, 75, 79, 94, 97, 98, 114, 116, 119, 120, 123, 127, 132, 133,
        135, 140, 145, 147, 148, 150, 152, 154, 155, 157, 162, 163, 166, 170, 172, 173, 176, 178, 182, 183
    ],
    'GigaChat-Max/details_20250410_000532__blob_679adcebb6.json': [
        2, 5, 6, 7, 8, 12, 13, 18, 19, 20, 22, 23, 30, 34, 37, 39, 44, 56, 58, 60, 68, 75, 76, 87, 107, 111, 112,
        116, 120, 126, 131, 134, 135, 143, 145, 151, 157, 158, 159, 160, 162, 170, 173, 175, 178, 180, 183, 186
    ],
    'gpt-4o-mini/details_20250407_174507__blob_9021856cd9.json': [
        2
    ],
    'gpt-4o-mini/details_20250407_175252__blob_c78fcdaa64.json': [
        2
    ],
    'gpt-4o-mini/details_20250408_072324__blob_ea2486e951.json': [
        2
    ],
    'gpt-4o-mini/details_20250408_072833__blob_3d94eda254.json': [
        2
    ],
    'gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json': [
        2, 5, 7, 8, 11, 12, 15, 22, 23, 27, 29, 33, 34, 38, 39, 44, 48, 56, 63, 70, 73, 75, 81, 89, 91, 108, 117,
        121, 122, 125, 132, 133, 134, 143, 145, 155, 157, 158, 159, 163, 170, 173, 178, 179, 181
    ],
    'gpt-4o-mini/details_20250408_115501__blob_eaeb6c9734.json': [
        5, 7, 8, 10, 16, 19, 20, 22, 23, 32, 34, 40, 42, 53, 56, 63, 65, 73, 75, 86, 103, 107, 112, 113, 120, 122,
        125, 132, 134, 143, 145, 155, 158, 159, 163, 170, 173, 178, 179, 180, 183, 184
    ],
    'gpt-4o-mini/details_20250409_235721__blob_8376e25134.json': [
        2, 7, 12, 16, 19, 20, 22, 23, 29, 33, 40, 44, 46, 53, 63, 75, 81, 86, 93, 98, 108, 125, 132, 134, 138, 143,
        145, 147, 155, 158, 159, 163, 173, 178, 180, 182, 184
    ],
    'gpt-4o/details_20250408_074210__blob_e9d5cad1dc.json': [
        3, 7, 8, 12, 13, 15, 16, 22, 23, 40, 44, 50, 56, 63, 68, 73, 87, 94, 99, 106, 119, 127, 133, 135, 138, 139,
        145, 147, 163, 173, 176, 181, 186
    ],
    'gpt-4o/details_20250408_115501__blob_4a478c853b.json': [
        2, 8, 11, 12, 13, 16, 18, 19, 22, 23, 39, 42, 43, 44, 56, 57, 63, 76, 85, 98, 99, 101, 112, 120, 133, 134,
        135, 138, 139, 142, 143, 145, 152, 153, 158, 163, 167, 170, 172, 173, 175, 178, 180, 183, 186
    ],
    'gpt-4o/details_20250409_235721__blob_9df4eb40dc.json': [
        2, 7, 8, 9, 11, 13, 16, 19, 22, 23, 33, 37, 39, 55, 56, 63, 76, 86, 87, 89, 90, 91, 92, 93, 98, 99, 121,
        123, 130, 135, 138, 143, 145, 146, 166, 167, 170, 172, 173, 178, 180, 183, 184, 186
    ],
    'o3-mini-2025-01-31/details_20250408_083654__blob_f614b65ebd.json': [
        3, 5, 22, 40, 52, 54, 55, 56, 61, 67, 70, 88, 93, 101, 109, 110, 111, 112, 116, 120, 125, 145, 146, 157,
        167, 171, 177, 183, 184
    ],
    'o3-mini-2025-01-31/details_20250408_121611__blob_4164f029a3.json': [
        3, 40, 41, 42, 45, 47, 70, 81, 83, 85, 91, 94, 99, 100, 109, 113, 114, 116, 117, 120, 124, 126, 134, 145,
        147, 152, 159, 171, 173, 178, 179, 180, 184, 188
    ],
}

# Labels where this grader disagrees, and why the label is what it is.
NOTES: dict[tuple[str, int], str] = {
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 19):
        'the reference 0.64 is the list {0, 64} with its comma made a point (the task asks for all variants)',
    ('GigaChat-2/details_20250410_000342__blob_277d4cd51a.json', 19):
        'the reference 0.64 is the list {0, 64} with its comma made a point (the task asks for all variants)',
    ('gpt-4o/details_20250408_074210__blob_e9d5cad1dc.json', 19):
        'the reference 0.64 is the list {0, 64} with its comma made a point (the task asks for all variants)',
}

LABELS: list[tuple[str, int, str]] = sorted(
    [(f, i, "c") for f, idx in CORRECT.items() for i in idx]
    + [(f, i, "i") for f, idx in INCORRECT.items() for i in idx])

# A blind sample: 40 answers drawn at random (random.Random(1717).sample of the non-empty answers not in LABELS, in
# load_upstream order) and labelled by the issue-17 developer from the end of each response and the reference,
# without seeing the grader's verdicts. Most are plain integers: it checks the easy majority, not hard formats.
BLIND: list[tuple[str, int, str]] = [
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 83, 'c'),
    ('GigaChat-Max/details_20250410_000532__blob_679adcebb6.json', 50, 'i'),
    ('GigaChat-Max/details_20250410_000532__blob_679adcebb6.json', 11, 'c'),
    ('GigaChat-2-Max/details_20250409_235721__blob_81432a1f02.json', 128, 'i'),
    ('GigaChat-2/details_20250410_000342__blob_277d4cd51a.json', 118, 'i'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 152, 'i'),
    ('GigaChat-Max/details_20250410_000532__blob_679adcebb6.json', 33, 'i'),
    ('gpt-4o-mini/details_20250408_115501__blob_eaeb6c9734.json', 156, 'i'),
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 14, 'i'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 118, 'i'),
    ('gpt-4o/details_20250408_074210__blob_e9d5cad1dc.json', 5, 'c'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 184, 'i'),
    ('gpt-4o/details_20250409_235721__blob_9df4eb40dc.json', 112, 'i'),
    ('gpt-4o/details_20250409_235721__blob_9df4eb40dc.json', 102, 'i'),
    ('gpt-4o-mini/details_20250409_235721__blob_8376e25134.json', 114, 'i'),
    ('gpt-4o-mini/details_20250409_235721__blob_8376e25134.json', 111, 'i'),
    ('gpt-4o/details_20250408_115501__blob_4a478c853b.json', 40, 'i'),
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 111, 'i'),
    ('gpt-4o/details_20250408_115501__blob_4a478c853b.json', 7, 'i'),
    ('gpt-4o/details_20250409_235721__blob_9df4eb40dc.json', 174, 'i'),
    ('gpt-4o/details_20250409_235721__blob_9df4eb40dc.json', 36, 'i'),
    ('GigaChat-2/details_20250410_000342__blob_277d4cd51a.json', 65, 'i'),
    ('o3-mini-2025-01-31/details_20250408_083654__blob_f614b65ebd.json', 155, 'i'),
    ('gpt-4o-mini/details_20250408_072833__blob_3d94eda254.json', 4, 'i'),
    ('gpt-4o/details_20250409_235721__blob_9df4eb40dc.json', 122, 'i'),
    ('o3-mini-2025-01-31/details_20250408_083654__blob_f614b65ebd.json', 90, 'c'),
    ('GigaChat-2/details_20250410_000342__blob_277d4cd51a.json', 4, 'i'),
    ('GigaChat-2/details_20250410_000342__blob_277d4cd51a.json', 9, 'i'),
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 75, 'c'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 160, 'i'),
    ('GigaChat-2-Max/details_20250409_235721__blob_81432a1f02.json', 65, 'i'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 169, 'i'),
    ('GigaChat-Max/details_20250410_000532__blob_679adcebb6.json', 94, 'i'),
    ('gpt-4o-mini/details_20250409_235721__blob_8376e25134.json', 88, 'i'),
    ('gpt-4o-mini/details_20250408_073159__blob_d796b439c3.json', 139, 'i'),
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 130, 'i'),
    ('gpt-4o/details_20250408_115501__blob_4a478c853b.json', 89, 'i'),
    ('GigaChat-2-Max/details_20250409_235721__blob_81432a1f02.json', 10, 'i'),
    ('GigaChat-Max/details_20250410_000532__blob_679adcebb6.json', 28, 'i'),
    ('GigaChat-2-Pro/details_20250409_235721__blob_37aa888ffe.json', 153, 'i'),
]
