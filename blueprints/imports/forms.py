"""Import forms: the upload, and the confirmation with what to send afterwards."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField
from wtforms.validators import DataRequired

from services.imports import MAX_BYTES

SEND_CHOICES = [
    ("", "Only create the accounts"),
    ("link:sms", "Then send each account its secure link by SMS"),
    ("link:email", "Then send each account its secure link by e-mail"),
    ("install:sms", "Then send each account the installation message by SMS"),
    ("install:email", "Then send each account the installation message by e-mail"),
]


class UploadForm(FlaskForm):
    """A CSV file and the group for rows that name none."""

    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")],
                     description=f"UTF-8 (in Excel: “CSV UTF-8”), comma- or semicolon-separated, at most "
                                 f"{MAX_BYTES // 2 ** 20} MB.")
    group_id = SelectField("Default group", coerce=int, validators=[DataRequired("Choose a group.")],
                           description="For the rows whose group column is empty.")


class ConfirmForm(FlaskForm):
    """Write the checked rows; optionally send every new account its message."""

    send = RadioField("After the import", choices=SEND_CHOICES, default="")
