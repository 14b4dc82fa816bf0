/**
 * A small but real Django project packaged as a wheel ("shopapp"): settings read the sqlite path from
 * SHOPAPP_DB, one model per migration, a /health/ view answering with the version (or the status
 * asked for), and a console script. Version N.M ships `migrations` migrations.
 */
import { buildWheel } from './build-wheel.js';

export interface DjangoAppOptions {
  version: string;
  /** How many migrations (0001 creates Item, each later one adds a model). Default 1. */
  migrations?: number;
  /** HTTP status of /health/. Default 200. */
  healthStatus?: number;
  requiresDist?: string[];
}

export const SHOPAPP_SETTINGS = 'shopapp.settings';

export async function buildDjangoAppWheel(outDir: string, options: DjangoAppOptions): Promise<string> {
  const { version } = options;
  const migrations = options.migrations ?? 1;
  const files: Record<string, string> = {
    'shopapp/__init__.py': `__version__ = "${version}"\n\ndef main():\n    print("shopapp " + __version__)\n`,
    'shopapp/settings.py': [
      'import os',
      'SECRET_KEY = "vdeploy-test-not-secret"',
      'DEBUG = False',
      'ALLOWED_HOSTS = ["*"]',
      'INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shopapp"]',
      'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SHOPAPP_DB"]}}',
      'ROOT_URLCONF = "shopapp.urls"',
      'USE_TZ = True',
      'DEFAULT_AUTO_FIELD = "django.db.models.AutoField"',
      '',
    ].join('\n'),
    'shopapp/urls.py': 'from django.urls import path\nfrom . import views\nurlpatterns = [path("health/", views.health)]\n',
    'shopapp/views.py': `from django.http import HttpResponse\nfrom . import __version__\n\ndef health(request):\n    return HttpResponse("shopapp " + __version__, status=${options.healthStatus ?? 200})\n`,
    'shopapp/wsgi.py': 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopapp.settings")\nfrom django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n',
    'shopapp/migrations/__init__.py': '',
  };
  const models = ['from django.db import models', ''];
  for (let i = 1; i <= migrations; i++) {
    const model = i === 1 ? 'Item' : `Extra${i}`;
    models.push(`class ${model}(models.Model):`, '    name = models.CharField(max_length=50)', '');
    const deps = i === 1 ? '[]' : `[("shopapp", "${migrationName(i - 1)}")]`;
    files[`shopapp/migrations/${migrationName(i)}.py`] = [
      'from django.db import migrations, models',
      '',
      'class Migration(migrations.Migration):',
      `    initial = ${i === 1 ? 'True' : 'False'}`,
      `    dependencies = ${deps}`,
      '    operations = [',
      `        migrations.CreateModel(name="${model}", fields=[`,
      '            ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),',
      '            ("name", models.CharField(max_length=50)),',
      '        ]),',
      '    ]',
      '',
    ].join('\n');
  }
  files['shopapp/models.py'] = models.join('\n');
  return buildWheel(outDir, {
    name: 'shopapp',
    version,
    files,
    requiresDist: options.requiresDist ?? ['Django>=5.2', 'gunicorn>=20'],
    entryPoints: { 'shopapp-version': 'shopapp:main' },
  });
}

function migrationName(i: number): string {
  return i === 1 ? '0001_initial' : `${String(i).padStart(4, '0')}_extra${i}`;
}
