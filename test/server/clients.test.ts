// Mainstream OpenAI clients against the real server, unchanged: LangChain JS (@langchain/openai: bindTools → tool
// calls, withStructuredOutput with a zod schema) and the Vercel AI SDK (ai + @ai-sdk/openai: generateObject,
// streamText with a tool). The shipped-size tiny model is random, so what is checked is the contract: every
// structured output parses and validates, every tool call names a tool and carries valid arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ChatOpenAI } from '@langchain/openai';
import { tool as lcTool } from '@langchain/core/tools';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, streamText, tool, stepCountIs } from 'ai';
import { startServer } from './harness.js';

const Sky = z.object({ color: z.enum(['red', 'green', 'blue']), clear: z.boolean() });
const Weather = z.object({ city: z.enum(['Paris', 'Rome']) });

test('LangChain JS: bindTools gives tool calls, withStructuredOutput gives a parsed zod object', async () => {
  const s = await startServer([{ name: 'm', arch: '2mamba' }]);
  try {
    const llm = new ChatOpenAI({ model: 'm', apiKey: 'x', maxTokens: 120, configuration: { baseURL: `${s.url}/v1` } });
    const weather = lcTool(async ({ city }: { city: string }) => `sunny in ${city}`, {
      name: 'get_weather',
      description: 'The weather in a city',
      schema: Weather,
    });
    const msg = await llm.bindTools([weather], { tool_choice: 'required' }).invoke('Weather in Paris?');
    assert.equal(msg.tool_calls?.length, 1, JSON.stringify(msg));
    assert.equal(msg.tool_calls![0]!.name, 'get_weather');
    assert.ok(Weather.safeParse(msg.tool_calls![0]!.args).success, JSON.stringify(msg.tool_calls));
    for (const method of ['jsonSchema', 'functionCalling'] as const) {
      const sky = await llm.withStructuredOutput(Sky, { method }).invoke('Describe the sky.');
      assert.ok(Sky.safeParse(sky).success, `${method}: ${JSON.stringify(sky)}`);
    }
  } finally {
    await s.close();
  }
});

test('Vercel AI SDK: generateObject and streamText with a required tool', async () => {
  const s = await startServer([{ name: 'm', arch: 'softmax' }]);
  try {
    const openai = createOpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x' });
    const { object } = await generateObject({
      model: openai.chat('m'),
      schema: Sky,
      prompt: 'Describe the sky.',
      maxOutputTokens: 120,
    });
    assert.ok(Sky.safeParse(object).success, JSON.stringify(object));
    const calls: unknown[] = [];
    const r = streamText({
      model: openai.chat('m'),
      prompt: 'Weather in Rome?',
      maxOutputTokens: 120,
      toolChoice: 'required',
      tools: {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: Weather,
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      },
      stopWhen: stepCountIs(1),
    });
    for await (const part of r.fullStream) if (part.type === 'tool-call') calls.push(part.input);
    assert.equal(calls.length, 1);
    assert.ok(Weather.safeParse(calls[0]).success, JSON.stringify(calls));
  } finally {
    await s.close();
  }
});
