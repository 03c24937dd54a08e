"""Lab 1's function, driven from Python: one LocalLab, so the table keeps what the first call wrote."""

from workshop.local import LocalLab

with LocalLab("1", target="solutions") as lab:  # (1)!
    created = lab.invoke("items_api", "api_create_item")  # (2)!
    listed = lab.invoke("items_api", "api_list_items")

    for invocation in (created, listed):
        start = "cold" if invocation.cold else "warm"  # (3)!
        print(invocation.response["statusCode"], start, invocation.response["body"])

    print(len(lab.items("ItemsTable")), "item(s) in ItemsTable")  # (4)!
