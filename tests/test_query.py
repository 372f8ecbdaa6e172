"""The text query encoder: offline, normalised, cached; the [positive, negative] condition."""
from __future__ import annotations

import pytest
import torch

from lass.query import QueryError, anchor_queries, build_condition, shared_text_encoder, validate_query


@pytest.fixture(scope="module")
def encoder():
    return shared_text_encoder()


def test_embeddings_are_unit_norm_and_cached(encoder):
    first = encoder.encode(["a dog barking", "rain on a roof"])
    assert first.shape == (2, 384)
    assert torch.allclose(first.norm(dim=-1), torch.ones(2), atol=1e-5)
    again = encoder.encode(["a   dog barking "])  # whitespace is normalised, so this is a cache hit
    assert torch.equal(again[0], first[0])


def test_similar_descriptions_are_closer_than_different_ones(encoder):
    dog, barking, rain = encoder.encode(["the sound of a dog", "a dog barking", "heavy rain falling"])
    assert float(dog @ barking) > float(dog @ rain) + 0.2


def test_condition_is_positive_then_negative_with_zeros_for_none(encoder):
    pos = encoder.encode(["speech", "birds"])
    neg = encoder.encode(["music"])
    cond = build_condition(pos, neg)
    assert cond.shape == (2, 768)
    assert torch.equal(cond[1, 384:], neg[0])
    assert torch.count_nonzero(build_condition(pos, None)[:, 384:]) == 0


@pytest.mark.parametrize("bad,message", [("", "empty query"), ("  \t", "empty query"), (None, "must be text")])
def test_bad_queries_are_rejected(bad, message):
    with pytest.raises(QueryError, match=message):
        validate_query(bad)


@pytest.mark.parametrize("query,positive,negatives", [
    ("speech, but not the music", "speech", ["the music"]),
    ("Speech but no music", "Speech", ["music"]),
    ("rain, no thunder", "rain", ["thunder"]),
    ("birds except for the crow; not traffic", "birds", ["the crow", "traffic"]),
    ("a song without words", "a song", ["words"]),
    ("speech with no music", "speech", ["music"]),
    ("speech (no music)", "speech", ["music"]),
    ("speech - not the piano", "speech", ["the piano"]),
    ("speech (no music) in a hall", "speech in a hall", ["music"]),
    ("speech [without music, not traffic]!", "speech", ["music", "traffic"]),
    ("speech -- no music.", "speech", ["music"]),
    ("a yes-no question, knick-knacks and what-not", "a yes-no question, knick-knacks and what-not", []),
    ("a minus sign beep", "a minus sign beep", []),
    ("a dog (barking), no rain", "a dog (barking)", ["rain"]),
    ("a dog not barking", "a dog not barking", []),  # a bare "not" without a comma is part of the description
    ("a well-known song (live)", "a well-known song (live)", []),
    ("exceptional butter knife, notably", "exceptional butter knife, notably", []),
])
def test_a_query_says_what_to_leave_out(query, positive, negatives):
    from lass.query import split_query

    assert split_query(query) == (positive, negatives)


@pytest.mark.parametrize("query,message", [("but not music", "says only what to leave out"),
                                           ("No music", "says only what to leave out"),
                                           ("everything but the dog", "ask for 'the dog' instead, and its residual"),
                                           ("All sounds, except speech", "ask for 'speech' instead"),
                                           ("speech but not", "leaves out nothing after its 'but not'")])
def test_a_query_that_only_leaves_out_is_refused(query, message):
    from lass.query import split_query

    with pytest.raises(QueryError, match=message):
        split_query(query)


def test_anchoring_pulls_a_query_toward_the_nearest_training_phrasings(encoder):
    vocabulary = encoder.encode(["a dog barking", "the sound of dog", "rain falling", "a church bell ringing"])
    puppy, bell = encoder.encode(["a puppy yapping", "a church bell ringing"])
    queries = torch.stack([puppy, bell])
    anchored = anchor_queries(queries, vocabulary, 0.5)
    assert anchored.shape == queries.shape
    assert torch.allclose(anchored.norm(dim=-1), torch.ones(2), atol=1e-5)
    # the words nearest the dog's phrasings move toward them, and away from the rain's
    before, after = vocabulary @ puppy, vocabulary @ anchored[0]
    assert float(after[:2].min()) > float(before[:2].max()) + 0.05
    assert float(after[2] - before[2]) < float(after[0] - before[0])
    # a query that is a training phrasing stays itself; weight 0 or no vocabulary: the queries as given
    assert float(anchored[1] @ bell) > 0.99
    assert torch.equal(anchor_queries(queries, vocabulary, 0.0), queries)
    assert torch.equal(anchor_queries(queries, None, 0.5), queries)
    # the weight sets how far: more of it, nearer the anchor
    further = anchor_queries(queries, vocabulary, 2.0)
    assert float((vocabulary[:2] @ further[0]).min()) > float(after[:2].min())
