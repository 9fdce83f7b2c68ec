"""EmailEngine's ``trackOpens`` and ``trackClicks`` settings: a send's defaults, null (never
set) for every tenant until it sets them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0013_url_passwords'),
    ]

    operations = [
        migrations.AddField(
            model_name='enginesettings',
            name='track_clicks',
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='enginesettings',
            name='track_opens',
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
