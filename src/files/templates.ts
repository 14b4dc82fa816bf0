/** Nunjucks (Jinja syntax) for config file templates: stub, filled in below. */
export interface TemplateSource {
  /** Absolute path of the template file. */
  file: string;
  /** Directory `{% include %}` may read from (the entry's src tree). */
  root: string;
}

export function renderTemplate(_source: TemplateSource, _text: string, _context: Record<string, unknown>): string {
  throw new Error('not implemented yet');
}
