from django.db import migrations, models


class Migration(migrations.Migration):
    """A reclaimed lease is re-leased as a new assignment row (a new id), so (pair, rater) is unique
    only among live rows: the expired ones stay as history."""

    dependencies = [
        ('annotation', '0006_agreement_gate'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='assignment',
            name='assignment_one_per_rater',
        ),
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'expired'), _negated=True),
                                               fields=('pair', 'rater'), name='assignment_one_live_per_rater'),
        ),
    ]
