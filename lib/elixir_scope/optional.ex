defmodule ElixirScope.Optional do
  @moduledoc false
  # The parts of ElixirScope that tracing does not need — the MCP server and the web UI — start
  # through here: one that cannot start (its port is taken: a second `iex -S mix`, or
  # `mix test` beside a running application) logs one warning and is left out
  # (`:ignore`, so its supervisor goes on), and the reason is kept for setup/1's answer
  # and tracing_info/0, until the next start. Tracing and the store run whatever
  # happens here.

  require Logger

  @key {ElixirScope, :not_started}

  @doc false
  # A child spec that starts `spec` as the optional `part`.
  def child_spec(part, %{start: start} = spec),
    do: %{spec | start: {__MODULE__, :start_link, [part, start]}}

  @doc false
  def start_link(part, {m, f, a}) do
    case apply(m, f, a) do
      {:error, reason} -> not_started(part, reason)
      other -> other
    end
  end

  defp not_started(part, reason) do
    Logger.warning(
      "ElixirScope: the #{name(part)} did not start (#{inspect(reason)}); tracing and the " <>
        "store run without it. #{hint(reason)}"
    )

    :persistent_term.put(@key, Keyword.put(not_started(), part, reason))
    :ignore
  end

  defp name(:mcp), do: "MCP server"
  defp name(:ui), do: "web UI"

  defp hint({_, :eaddrinuse}),
    do:
      "Its port is taken (another instance of the application, or mix test beside it?): " <>
        "give it another one, or port: 0 for a free one."

  defp hint(_reason), do: ""

  @doc false
  # The optional parts that did not start since forget/0, with why.
  def not_started, do: :persistent_term.get(@key, [])

  @doc false
  def forget do
    if not_started() != [], do: :persistent_term.erase(@key)
    :ok
  end
end
