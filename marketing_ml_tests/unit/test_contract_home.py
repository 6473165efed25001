"""A raw file's handling is data in its contract entry: no module branches on a file."""

import ast

from marketing_ml import contract
from marketing_ml_tests.support import REPOSITORY

RAW_FILE_NAMES = {
    name for name, value in vars(contract).items() if isinstance(value, contract.RawFile)
}


def comparisons_with_a_raw_file(path) -> list[str]:
    """Every comparison with a declared raw file as an operand (`raw_file is
    META_CAMPAIGN_PERFORMANCE`): a special case that belongs in the file's contract entry."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            if isinstance(operand, ast.Name) and operand.id in RAW_FILE_NAMES:
                found.append(f"{path.relative_to(REPOSITORY)}:{node.lineno} {operand.id}")
    return found


def test_no_pipeline_module_special_cases_a_raw_file():
    modules = sorted((REPOSITORY / "marketing_ml").rglob("*.py"))
    assert len(modules) > 30
    special_cases = [
        found
        for path in modules
        if path.name != "contract.py"
        for found in comparisons_with_a_raw_file(path)
    ]
    assert special_cases == []


def test_every_file_specific_rule_is_declared_in_the_contract():
    performance = contract.META_CAMPAIGN_PERFORMANCE
    assert [rule for _, rule, _ in performance.row_rules] == ["clicks_exceed_impressions"]
    assert "ctr_reported" in " ".join(performance.silver_select)
    expectations = {
        raw_file.name: [expectation.name for expectation in raw_file.expectations]
        for raw_file in contract.RAW_FILES
        if raw_file.expectations
    }
    assert expectations == {
        "meta_campaign_performance": ["ctr_cpm_match_reported"],
        "budget_pacing": ["budget_utilization_sane"],
        "conversion_events": ["bookings_have_value"],
    }
    assert [raw_file.name for raw_file in contract.DAILY_FACT_FILES] == [
        "meta_campaign_performance",
        "budget_pacing",
        "conversion_events",
    ]
