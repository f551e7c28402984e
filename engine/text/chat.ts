// Chat templates through @huggingface/jinja (spec/serving.md §5.3). A checkpoint's own `chat_template`
// (tokenizer_config.json) wins; otherwise a ChatML template. The rendered text already carries BOS, so it is
// encoded without special tokens.
import { Template } from '@huggingface/jinja';

export const CHATML_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

export class ChatTemplate {
  private readonly tpl: Template;

  constructor(
    readonly source: string,
    readonly origin: 'checkpoint' | 'chatml-default',
    private readonly specials: { bos_token: string; eos_token: string },
  ) {
    try {
      this.tpl = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
  }

  /** Whether the template renders a request's `tools` itself (a checkpoint's that mentions them); else fury writes
   *  the tool preamble into the conversation (tools.ts). */
  get handlesTools(): boolean {
    return this.origin === 'checkpoint' && /\btools\b/.test(this.source);
  }

  /** The checkpoint's template (tokenizer_config.json `chat_template`, a string or the named `default`), else ChatML. */
  static forTokenizer(
    config: Record<string, unknown> | null,
    specials: { bos_token: string; eos_token: string },
  ): ChatTemplate {
    let t = config?.chat_template;
    if (Array.isArray(t)) t = (t.find((x) => x?.name === 'default') as { template?: unknown } | undefined)?.template;
    return typeof t === 'string'
      ? new ChatTemplate(t, 'checkpoint', specials)
      : new ChatTemplate(CHATML_TEMPLATE, 'chatml-default', specials);
  }

  /** The prompt text of `messages`; `kwargs` (chat_template_kwargs) are extra template variables (e.g.
   *  enable_thinking), under the ones fury sets. */
  render(messages: readonly ChatMessage[], addGenerationPrompt = true, kwargs: Record<string, unknown> = {}): string {
    if (!messages.length) throw new ChatTemplateError('messages must hold at least one message');
    for (const [i, m] of messages.entries()) {
      if (!(CHAT_ROLES as readonly string[]).includes(m.role)) {
        throw new ChatTemplateError(`messages[${i}].role "${m.role}" is not one of ${CHAT_ROLES.join(', ')}`);
      }
      if (typeof m.content !== 'string') throw new ChatTemplateError(`messages[${i}].content must be a string`);
    }
    try {
      return this.tpl.render({ ...kwargs, messages, add_generation_prompt: addGenerationPrompt, ...this.specials });
    } catch (e) {
      throw new ChatTemplateError(`the chat template failed: ${(e as Error).message}`);
    }
  }
}
