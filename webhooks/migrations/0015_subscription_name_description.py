"""A subscription's optional ``name`` and ``description``: the tenant's words for it, shown by
``/v1/webhooks`` and as EmailEngine's webhook routes' (``webhooks.routes``). Empty for every
subscription made before."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0014_tracking_defaults'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhooksubscription',
            name='name',
            field=models.CharField(blank=True, default='', max_length=256),
        ),
        migrations.AddField(
            model_name='webhooksubscription',
            name='description',
            field=models.CharField(blank=True, default='', max_length=1024),
        ),
    ]
