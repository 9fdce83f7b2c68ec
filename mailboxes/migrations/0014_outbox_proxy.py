from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxes', '0013_outbox_local_address'),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxentry',
            name='proxy',
            field=models.CharField(blank=True, default='', max_length=2048),
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='sealed_proxy_password',
            field=models.TextField(blank=True, default=''),
        ),
    ]
