"""Word lists for names and addresses. Invented combinations: no real person is described."""

from __future__ import annotations

import pyarrow as pa


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = pa.array(
    _words(
        "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
        "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
        "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily "
        "Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa "
        "Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia "
        "Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry "
        "Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory "
        "Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack Maria Dennis "
        "Catherine Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce"
    )
)
LAST_NAMES = pa.array(
    _words(
        "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
        "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
        "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
        "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
        "Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart "
        "Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed "
        "Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
        "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez"
    )
)
STREETS = pa.array(
    _words(
        "Oak Maple Pine Cedar Elm Washington Lake Hill Park Main Sunset Lincoln Jackson Church "
        "River Highland Forest Meadow Spring Ridge Valley Walnut Cherry Willow Franklin Jefferson "
        "Madison Adams Center Mill Prospect Union Grove Orchard Chestnut Birch Dogwood Magnolia"
    )
)
STREET_KINDS = pa.array(_words("St Ave Rd Dr Ln Ct Blvd Way Pl Ter"))
VENDOR_WORDS = pa.array(
    _words(
        "Allied Summit Pioneer Liberty Keystone Frontier Heritage Beacon Patriot Harbor Eagle "
        "Cardinal Granite Evergreen Horizon Meridian Sterling Atlas Cornerstone Lakeside Valley "
        "Northstar Riverbend Bluewater Redwood Ironwood Clearview Trinity Unity Capital"
    )
)
VENDOR_TRADES = pa.array(
    [
        trade.replace("_", " ")
        for trade in _words(
            "Medical Health Clinical Home_Care Logistics Defense Systems Engineering Pharmacy "
            "Diagnostics Supply Construction Rehabilitation Services Technologies"
        )
    ]
)
VENDOR_FORMS = pa.array(_words("LLC Inc Corp Group Partners Associates Co"))

# (state, lowest ZIP3, highest ZIP3): the ZIP prefixes the USPS assigns to each state.
STATE_ZIP3 = (
    ("AL", 350, 369), ("AK", 995, 999), ("AZ", 850, 865), ("AR", 716, 729), ("CA", 900, 961),
    ("CO", 800, 816), ("CT", 60, 69), ("DE", 197, 199), ("DC", 200, 205), ("FL", 320, 349),
    ("GA", 300, 319), ("HI", 967, 968), ("ID", 832, 838), ("IL", 600, 629), ("IN", 460, 479),
    ("IA", 500, 528), ("KS", 660, 679), ("KY", 400, 427), ("LA", 700, 714), ("ME", 39, 49),
    ("MD", 206, 219), ("MA", 10, 27), ("MI", 480, 499), ("MN", 550, 567), ("MS", 386, 397),
    ("MO", 630, 658), ("MT", 590, 599), ("NE", 680, 693), ("NV", 889, 898), ("NH", 30, 38),
    ("NJ", 70, 89), ("NM", 870, 884), ("NY", 100, 149), ("NC", 270, 289), ("ND", 580, 588),
    ("OH", 430, 459), ("OK", 730, 749), ("OR", 970, 979), ("PA", 150, 196), ("RI", 28, 29),
    ("SC", 290, 299), ("SD", 570, 577), ("TN", 370, 385), ("TX", 750, 799), ("UT", 840, 847),
    ("VT", 50, 59), ("VA", 220, 246), ("WA", 980, 994), ("WV", 247, 268), ("WI", 530, 549),
    ("WY", 820, 831),
)  # fmt: skip
STATES = pa.array([state for state, _, _ in STATE_ZIP3])
