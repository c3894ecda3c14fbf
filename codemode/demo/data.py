"""The product brief's data, generated deterministically (same seed, same records).

- team: members with Q3 expense records against a $10,000 budget (the brief's "Get team
  expenses and find budget overages"); `team_size` scales it for benchmarks.
- leads: 500 leads to qualify, with scores and companies.
- jobs: job offers with company details ("the highest-paying offer from tech companies").
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

BUDGET = 10_000
FIRST = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
         "Mo", "Nia", "Oto", "Pia", "Quin", "Rui", "Sam", "Tess"]  # fmt: skip
LAST = ["Ito", "Khan", "Lopez", "Meyer", "Novak", "Okafor", "Park", "Rossi", "Silva", "Tanaka"]
CATEGORIES = ["travel", "hotel", "meals", "software", "hardware", "training", "conference"]
INDUSTRIES = ["Tech", "Finance", "Healthcare", "Retail", "Tech / SaaS", "Energy", "Biotech",
              "Manufacturing", "Technology Services", "Media"]  # fmt: skip


@cache
def team(size: int = 20) -> list[dict[str, Any]]:
    rng = random.Random(20 + size)
    members = []
    for i in range(size):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i * 7 + i // len(FIRST)) % len(LAST)]}"
        members.append(
            {
                "id": f"m{i + 1:05d}",
                "name": name,
                "email": f"{name.lower().replace(' ', '.')}{i + 1}@example.com",
                "role": rng.choice(["engineer", "designer", "manager", "analyst", "sales"]),
                "department": rng.choice(["platform", "growth", "data", "field"]),
                "location": rng.choice(["Berlin", "Lisbon", "Toronto", "Osaka", "Austin"]),
                "start_date": f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-01",
                "manager_id": "m00001" if i else None,
            }
        )
    return members


@cache
def expenses(member_id: str, quarter: str) -> list[dict[str, Any]]:
    """Five records per member and quarter; about one member in four goes over budget."""
    rng = random.Random(f"{member_id}/{quarter}")
    heavy = rng.random() < 0.25
    records = []
    for j in range(5):
        amount = round(rng.uniform(2_200, 3_600) if heavy else rng.uniform(150, 1_900), 2)
        month = {"Q1": 1, "Q2": 4, "Q3": 7, "Q4": 10}.get(quarter, 7) + j % 3
        records.append(
            {
                "id": f"{member_id}-{quarter}-{j + 1}",
                "member_id": member_id,
                "quarter": quarter,
                "date": f"2026-{month:02d}-{rng.randint(1, 28):02d}",
                "category": rng.choice(CATEGORIES),
                "amount": amount,
                "currency": "USD",
                "merchant": rng.choice(["Lufthansa", "Marriott", "Figma", "Dell", "Hilton"]),
                "approved": rng.random() > 0.1,
                "notes": "Receipt attached; submitted through the expense portal for review.",
            }
        )
    return records


@cache
def companies() -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    result = {}
    for i in range(60):
        cid = f"c{i + 1:03d}"
        result[cid] = {
            "id": cid,
            "name": f"{rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Vandelay'])} "
            f"{rng.choice(['Labs', 'Systems', 'Group', 'Works', 'Partners'])} {i + 1}",
            "industry": INDUSTRIES[i % len(INDUSTRIES)],
            "employees": rng.randint(10, 50_000),
            "country": rng.choice(["US", "DE", "JP", "BR", "CA"]),
            "founded": rng.randint(1950, 2022),
        }
    return result


@cache
def leads() -> list[dict[str, Any]]:
    rng = random.Random(500)
    ids = sorted(companies())
    return [
        {
            "id": f"l{i + 1:03d}",
            "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "company_id": rng.choice(ids),
            "status": "unqualified" if i % 10 else "qualified",
            "source": rng.choice(["webinar", "referral", "ads", "event"]),
            "visits": rng.randint(0, 40),
            "downloads": rng.randint(0, 6),
        }
        for i in range(500)
    ]


def score(lead: dict[str, Any]) -> float:
    """A deterministic score in [0, 1] from a lead's activity."""
    raw = 0.02 * min(int(lead.get("visits", 0)), 40) + 0.06 * min(int(lead.get("downloads", 0)), 6)
    bonus = 0.1 if lead.get("source") == "referral" else 0.0
    return round(min(1.0, raw * 0.8 + bonus), 3)


@cache
def job_offers() -> list[dict[str, Any]]:
    rng = random.Random(99)
    ids = sorted(companies())
    return [
        {
            "id": f"o{i + 1:02d}",
            "title": rng.choice(["Backend Engineer", "Data Scientist", "Product Manager", "SRE"]),
            "company_id": ids[(i * 5) % len(ids)],
            "salary": rng.randrange(90_000, 260_000, 500),
            "remote": rng.random() > 0.5,
        }
        for i in range(24)
    ]
