from django import forms

from credits.services import MAX_CHANGE


class CreditChangeForm(forms.Form):
    """The admin's "Grant or adjust credits" form. It only checks the input; the change
    itself goes through credits_grant / credits_adjust, which check it again."""

    class Kind:
        GRANT = "grant"
        ADJUSTMENT = "adjustment"
        CHOICES = [(GRANT, "Grant (adds credits)"), (ADJUSTMENT, "Adjustment (either sign)")]

    kind = forms.ChoiceField(choices=Kind.CHOICES, initial=Kind.GRANT, widget=forms.RadioSelect)
    amount = forms.IntegerField(
        min_value=-MAX_CHANGE,
        max_value=MAX_CHANGE,
        help_text="Credits per selected user. Negative only for an adjustment.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Stored on each ledger row and shown to the person in their history.",
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero number of credits.")
        return amount

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == self.Kind.GRANT and cleaned.get("amount") is not None and cleaned["amount"] < 0:
            self.add_error("amount", "A grant adds credits; use an adjustment to take credits away.")
        return cleaned


class UserCreditForm(forms.Form):
    """The "Grant or adjust credits" form on a user's admin page: a positive amount is a
    grant, a negative one an adjustment. It only checks the input; credits_grant /
    credits_adjust check it again and the database refuses a balance below zero."""

    amount = forms.IntegerField(
        min_value=-MAX_CHANGE,
        max_value=MAX_CHANGE,
        help_text="Positive adds credits (a grant); negative takes them away (an adjustment).",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Stored on the ledger row and shown to the person in their history.",
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero number of credits.")
        return amount
