"""Sign-in and password forms."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    repeat = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")]
    )


class CodeForm(FlaskForm):
    """The 6 digits an authenticator app shows."""

    code = StringField("Code from your authenticator app", validators=[DataRequired(), Length(max=12)])


class AuthenticatorForm(FlaskForm):
    """Turn on or replace one's authenticator while signed in: the password, the old app's code,
    the new one's."""

    password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    old_code = StringField("Code from your current authenticator app", validators=[Length(max=12)])
    code = StringField("Code from the new authenticator app", validators=[DataRequired(), Length(max=12)])
