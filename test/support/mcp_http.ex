defmodule ElixirScope.Test.MCPHTTP do
  @moduledoc """
  A small MCP client over real HTTP (`:httpc`) for the MCP server tests: raw requests
  with any headers and body, and the JSON-RPC calls on top. Responses are parsed with
  the independent test parser (`ElixirScope.Test.JSON`), so every answer is also
  checked to be valid JSON.
  """

  alias ElixirScope.Test.JSON

  @accept {~c"accept", ~c"application/json, text/event-stream"}

  @doc "POSTs `body` (a term, encoded, or a binary sent as is) with MCP's usual headers."
  def post(url, body, headers \\ []) do
    body = if is_binary(body), do: body, else: ElixirScope.JSON.encode!(body)
    headers = Enum.map(headers, fn {k, v} -> {to_charlist(k), to_charlist(v)} end)

    headers = if List.keymember?(headers, ~c"accept", 0), do: headers, else: [@accept | headers]

    content_type =
      case List.keyfind(headers, ~c"content-type", 0) do
        {_, type} -> type
        nil -> ~c"application/json"
      end

    headers = List.keydelete(headers, ~c"content-type", 0)
    raw(:post, {to_charlist(url), headers, content_type, body})
  end

  @doc "Any other method, with `headers`."
  def request(method, url, headers) do
    headers = Enum.map(headers, fn {k, v} -> {to_charlist(k), to_charlist(v)} end)
    raw(method, {to_charlist(url), headers})
  end

  @doc "A request as `:httpc.request/4` takes it."
  def raw(method, request) do
    {:ok, {{_, status, _}, headers, body}} =
      :httpc.request(method, request, [timeout: 60_000], body_format: :binary)

    headers = Map.new(headers, fn {k, v} -> {to_string(k), to_string(v)} end)
    json = if body != "" and headers["content-type"] =~ "json", do: JSON.decode!(body)
    %{status: status, headers: headers, body: body, json: json}
  end

  @doc "Initializes a session; returns `{session_id, initialize_result}`."
  def initialize(url, version \\ "2025-11-25", headers \\ []) do
    response =
      post(
        url,
        %{
          jsonrpc: "2.0",
          id: 0,
          method: "initialize",
          params: %{
            protocolVersion: version,
            capabilities: %{},
            clientInfo: %{name: "exunit", version: "1.0"}
          }
        },
        headers
      )

    200 = response.status
    session = Map.fetch!(response.headers, "mcp-session-id")
    initialized = %{jsonrpc: "2.0", method: "notifications/initialized"}
    202 = post(url, initialized, session(session) ++ headers).status
    {session, response.json["result"]}
  end

  @doc "The headers of a request in `session`."
  def session(id, version \\ "2025-11-25"),
    do: [{"mcp-session-id", id}, {"mcp-protocol-version", version}]

  @doc "A JSON-RPC request in `session`: the decoded response body."
  def rpc(url, session, method, params \\ %{}, extra_headers \\ []) do
    response =
      post(
        url,
        %{jsonrpc: "2.0", id: System.unique_integer([:positive]), method: method, params: params},
        session(session) ++ extra_headers
      )

    response.json
  end

  @doc "Calls a tool: `{text, is_error}`."
  def call_tool(url, session, name, arguments \\ %{}) do
    case rpc(url, session, "tools/call", %{name: name, arguments: arguments}) do
      %{"result" => %{"content" => [%{"type" => "text", "text" => text}], "isError" => error}} ->
        {text, error}

      other ->
        raise "unexpected tools/call answer: #{inspect(other)}"
    end
  end
end
