from django import forms

from credits.services import MAX_CHANGE


class CreditAmountForm(forms.Form):
    """An amount of credits (non-zero, within ``MAX_CHANGE`` either way) and the reason
    stored on the ledger row. It only checks the input; the change itself goes through
    credits_grant / credits_adjust, which check it again (the database refuses a balance
    below zero)."""

    amount = forms.IntegerField(min_value=-MAX_CHANGE, max_value=MAX_CHANGE)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero number of credits.")
        return amount


class CreditChangeForm(CreditAmountForm):
    """The intermediate page of the "Grant or adjust credits" action (the Users list)."""

    class Kind:
        GRANT = "grant"
        ADJUSTMENT = "adjustment"
        CHOICES = [(GRANT, "Grant (adds credits)"), (ADJUSTMENT, "Adjustment (either sign)")]

    kind = forms.ChoiceField(choices=Kind.CHOICES, initial=Kind.GRANT, widget=forms.RadioSelect)
    field_order = ["kind", "amount", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].help_text = "Credits per selected user. Negative only for an adjustment."
        self.fields["reason"].widget.attrs["rows"] = 3
        self.fields["reason"].help_text = "Stored on each ledger row and shown to the person in their history."

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == self.Kind.GRANT and cleaned.get("amount") is not None and cleaned["amount"] < 0:
            self.add_error("amount", "A grant adds credits; use an adjustment to take credits away.")
        return cleaned


class UserCreditForm(CreditAmountForm):
    """The "Grant or adjust credits" form on a user's admin page: a positive amount is a
    grant, a negative one an adjustment."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].help_text = "Positive adds credits (a grant); negative takes them away (an adjustment)."
        self.fields["reason"].help_text = "Stored on the ledger row and shown to the person in their history."
