"""A small handbook of a made-up company, and questions whose answer is in exactly one section."""

# ruff: noqa: E501 - prose

from __future__ import annotations

SECTIONS: dict[str, str] = {
    "Refunds": "Customers can ask for a full refund within 30 days of purchase. Refunds go back to the original "
    "card and take five business days to appear.",
    "Shipping times": "Orders ship from our warehouse in Lyon within two business days. Delivery inside the EU "
    "takes three to five days; international parcels take up to three weeks.",
    "Shipping costs": "Shipping is free for orders above 50 euros. Smaller orders pay a flat fee of 4.90 euros.",
    "Opening hours": "The support desk answers from 8 am to 6 pm Central European Time, Monday to Friday. "
    "We are closed on public holidays.",
    "Warranty": "Every kettle carries a two-year warranty against manufacturing defects. Damage from dropping "
    "or descaling with vinegar is not covered.",
    "Descaling": "Descale the kettle every month with citric acid: fill it halfway, boil, wait twenty minutes, "
    "then rinse twice.",
    "Password reset": "To reset a forgotten password, click 'Forgot password' on the login page and follow the "
    "link we email you. The link expires after one hour.",
    "Two-factor authentication": "Accounts can be protected with an authenticator app. Enable two-factor "
    "authentication under Settings, Security, and scan the QR code.",
    "Invoices": "Invoices are available as PDF files under Account, Billing. Business customers can add their "
    "VAT number before paying so it appears on the invoice.",
    "Payment methods": "We accept Visa, Mastercard, American Express, PayPal and SEPA direct debit. Cash on "
    "delivery is not offered.",
    "Gift cards": "Gift cards are sold in amounts of 25, 50 and 100 euros and stay valid for three years from "
    "the day they are bought.",
    "Student discount": "Students get 15 percent off with a valid student card verified through our partner "
    "UNiDAYS.",
    "Recycling": "Send old kettles back with the prepaid recycling label from your account; we recover the "
    "steel and the heating element.",
    "Spare parts": "Lids, filters and power bases can be ordered as spare parts. A replacement limescale "
    "filter costs 6 euros.",
    "Careers": "We hire engineers and designers in Lyon and Berlin. Open positions are listed on the jobs "
    "page; we answer every application within ten days.",
    "Privacy": "Personal data is stored in Frankfurt and never sold. You can download or delete your data "
    "from the privacy dashboard at any time.",
    "Loyalty points": "Each euro spent earns one loyalty point; 100 points give a 5 euro voucher at checkout.",
    "Wholesale": "Shops and cafes can open a wholesale account with tiered prices starting at 20 kettles per "
    "order.",
    "Voltage": "Our kettles run on 220 to 240 volts. They will not work in countries with 110 volt sockets, "
    "even with a plug adapter.",
    "Order cancellation": "An order can be cancelled free of charge until it leaves the warehouse. After "
    "dispatch, use the return process instead.",
}

QUESTIONS: dict[str, str] = {
    "How many days do I have to ask for a refund?": "Refunds",
    "When will my parcel from Lyon arrive in Germany?": "Shipping times",
    "Is shipping free for small orders?": "Shipping costs",
    "What time does support open?": "Opening hours",
    "Is a broken heating defect covered by the warranty?": "Warranty",
    "How do I remove limescale with citric acid?": "Descaling",
    "I forgot my password, what do I do?": "Password reset",
    "How can I turn on two-factor authentication?": "Two-factor authentication",
    "Where can I download my invoice as a PDF?": "Invoices",
    "Do you accept PayPal?": "Payment methods",
    "How long is a gift card valid?": "Gift cards",
    "Is there a discount for students?": "Student discount",
    "How do I recycle my old kettle?": "Recycling",
    "Can I buy a replacement filter?": "Spare parts",
    "Are you hiring engineers?": "Careers",
    "Can I delete my personal data?": "Privacy",
    "How many loyalty points do I need for a voucher?": "Loyalty points",
    "Do you sell to cafes wholesale?": "Wholesale",
    "Will the kettle work with 110 volt sockets in the US?": "Voltage",
    "Can I cancel my order?": "Order cancellation",
}


def handbook_markdown() -> str:
    return "# Kettle Co. handbook\n\n" + "\n\n".join(
        f"## {title}\n\n{body}" for title, body in SECTIONS.items()
    )
