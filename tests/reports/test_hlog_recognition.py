"""``latcli report FILE`` tells an HdrHistogram log from other text by its content."""

from __future__ import annotations

import pytest

from latcli.reports.hlog import looks_like_hlog


@pytest.mark.parametrize(
    "text",
    [
        "#[Histogram log format version 1.3]\n#[StartTime: 1700000000.000 (seconds since epoch)]\n",
        "#[BaseTime: 0.000 (seconds since epoch)]\n",
        "0.000,1.000,2.500,HISTFAAAACl4nJNpmSzMwMDAxAABzFCaEUzL2X+AsQFS3wMs\n",
        "Tag=first_artifact,0.000,1.000,2.500,HISTFAAAACl4nJNpmSzMwMDAxAABzFCaEUzL2X+AsQ\n",
    ],
)
def test_a_log_is_recognised_by_its_header_or_its_interval_lines(text: str) -> None:
    assert looks_like_hlog(text)


@pytest.mark.parametrize(
    "text",
    ["# Results\n\nlatency was fine\n", "a,b,c\n1,2,3\n", "", "0.000,1.000,2.500,NOTHIST\n"],
)
def test_markdown_csv_and_empty_text_are_not_logs(text: str) -> None:
    assert not looks_like_hlog(text)
